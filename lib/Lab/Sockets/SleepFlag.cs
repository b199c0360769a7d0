using System.Runtime.CompilerServices;
using Lab.Interop;
using Tmds.Linux;

namespace Lab.Sockets;

/// <summary>
/// One thread's "I am asleep" word, and the futex it sleeps on: the hand-off RAMCloud's workers use. The sleeper
/// announces the sleep (<see cref="Announce"/>), looks for work once more, and only then sleeps (<see cref="Sleep"/>);
/// the giver posts the work first and then <see cref="Wake"/>s, which makes a system call only when the flag was up.
/// A thread that is awake or polling costs its giver no system call at all. No spinning here: a caller that wants to
/// poll first polls its own condition before <see cref="Announce"/>.
/// </summary>
/// <remarks>
/// Why not SemaphoreSlim: its Wait spins with sched_yield before it blocks (bench/README.md measured 1.9-3.6
/// sched_yield per request in RequestDispatch), and its Release takes a lock. Here a wake is one FUTEX_WAKE and a
/// sleep one FUTEX_WAIT, which the kernel refuses (EAGAIN) if the flag came down before the thread got there, so a
/// wake between <see cref="Announce"/> and <see cref="Sleep"/> is never lost.
/// </remarks>
public sealed unsafe class SleepFlag
{
    // On the pinned object heap: the kernel keys the futex by this word's address, which must not move.
    readonly int[] _word = GC.AllocateArray<int>(1, pinned: true);
    long _wakes;

    int* Word => (int*)Unsafe.AsPointer(ref _word[0]);

    /// <summary>True from <see cref="Announce"/> until a <see cref="Wake"/> or <see cref="Retract"/> takes the flag down.</summary>
    public bool Up => Volatile.Read(ref _word[0]) == 1;

    /// <summary>How many wakes made a system call (the flag was up).</summary>
    public long Wakes => Interlocked.Read(ref _wakes);

    /// <summary>Raises the flag, with a full fence: the caller's next read of its work cannot pass this store.</summary>
    public void Announce() => Interlocked.Exchange(ref _word[0], 1);

    /// <summary>Takes the flag down itself; false when a giver already did (a wake came or is coming).</summary>
    public bool Retract() => Interlocked.Exchange(ref _word[0], 0) == 1;

    /// <summary>Sleeps while the flag is up, at most <paramref name="max"/>; returns at once if it is already down.</summary>
    public void Sleep(TimeSpan max)
    {
        long ns = Math.Max(0, (long)(max.TotalMilliseconds * 1_000_000));
        var ts = new timespec { tv_sec = (time_t)(ns / 1_000_000_000), tv_nsec = (long_t)(ns % 1_000_000_000) };
        // EAGAIN (the flag was already down), ETIMEDOUT and EINTR all mean the same to the caller: look for work again.
        linux_futex.futex_wait(Word, 1, &ts);
    }

    /// <summary>Takes the flag down; if it was up, wakes the sleeper (one FUTEX_WAKE) and returns true.</summary>
    public bool Wake()
    {
        if (!TakeDown()) return false;
        linux_futex.futex_wake(Word, 1);
        return true;
    }

    /// <summary>
    /// Takes the flag down for a giver whose owner sleeps somewhere else (in epoll_wait, woken by an eventfd write):
    /// true when it was up, and then the caller must wake the owner its own way. Counted in <see cref="Wakes"/>.
    /// </summary>
    public bool TakeDown()
    {
        if (Interlocked.Exchange(ref _word[0], 0) != 1) return false;
        Interlocked.Increment(ref _wakes);
        return true;
    }
}
