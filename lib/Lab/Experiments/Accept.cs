using System.Diagnostics;
using Lab.Interop;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>What /proc says about one thread: its scheduler state and the kernel function it sleeps in.</summary>
/// <param name="Tid">The thread id (gettid).</param>
/// <param name="State">The state letter from /proc/self/task/TID/stat: R running, S sleeping (interruptible), D disk sleep...</param>
/// <param name="WaitChannel">/proc/self/task/TID/wchan: the kernel function the thread waits in ("0" when running).</param>
/// <param name="Syscall">The first field of /proc/self/task/TID/syscall: the system call number it is in (288 = accept4 on x86_64).</param>
public sealed record ThreadLook(int Tid, char State, string WaitChannel, string Syscall)
{
    /// <summary>Reads the thread's state, wait channel and system call now.</summary>
    public static ThreadLook Of(int tid)
    {
        var stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
        // "TID (comm) S ...": the state follows the last ')' (comm may hold spaces or parentheses).
        char state = stat[stat.LastIndexOf(')') + 2];
        var wchan = File.ReadAllText($"/proc/self/task/{tid}/wchan").Trim();
        var syscall = File.ReadAllText($"/proc/self/task/{tid}/syscall").Split(' ')[0].Trim();
        return new ThreadLook(tid, state, wchan, syscall);
    }

    /// <summary>True when the thread is asleep inside accept in the kernel.</summary>
    public bool InAccept => State == 'S' && (WaitChannel.Contains("accept") || WaitChannel.Contains("wait_for_connect") || (WaitChannel == "0" && Syscall == "288"));
}

/// <summary>
/// A thread calling the blocking <see cref="Listener.Accept"/> so a cell can look at it while it waits:
/// <see cref="Look"/> reads its state and wait channel from /proc.
/// </summary>
public sealed class ParkedAcceptor : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly Thread _thread;
    int _tid;
    int _disposed;
    readonly Stopwatch _clock = Stopwatch.StartNew();

    ParkedAcceptor(Listener listener, TimeSpan timeout)
    {
        _thread = new Thread(() =>
        {
            Volatile.Write(ref _tid, unistd.gettid());
            try { Result = listener.Accept(timeout, _cts.Token); }
            catch (Exception e) { Error = e; }
            WaitedFor = _clock.Elapsed;
        }) { IsBackground = true, Name = "lab-parked-accept" };
        _thread.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref _tid) != 0, TimeSpan.FromSeconds(5));
        LabResources.Track(this, "ParkedAcceptor");
    }

    /// <summary>Starts a thread in a blocking accept on <paramref name="listener"/> (a blocking listener), for at most <paramref name="timeout"/>.</summary>
    public static ParkedAcceptor Start(Listener listener, TimeSpan? timeout = null)
    {
        if (listener.NonBlocking) throw new ArgumentException("Open the listener without NonBlocking: a blocking accept waits in accept4 in the kernel.", nameof(listener));
        return new ParkedAcceptor(listener, timeout ?? TimeSpan.FromSeconds(20));
    }

    /// <summary>The waiting thread's id.</summary>
    public int Tid => Volatile.Read(ref _tid);
    /// <summary>What accept returned, once it has.</summary>
    public AcceptResult? Result { get; private set; }
    /// <summary>What accept threw, if anything.</summary>
    public Exception? Error { get; private set; }
    /// <summary>How long the accept waited, once it returned.</summary>
    public TimeSpan? WaitedFor { get; private set; }
    /// <summary>True while the thread is still inside Accept.</summary>
    public bool Waiting => _thread.IsAlive;

    /// <summary>
    /// Looks at the thread until /proc shows it asleep in accept (at most <paramref name="within"/>: a look taken
    /// before the thread has entered accept4, or while it is being woken, shows it elsewhere).
    /// </summary>
    public ThreadLook Look(TimeSpan? within = null)
    {
        var until = Stopwatch.GetTimestamp() + (long)((within ?? TimeSpan.FromSeconds(2)).TotalSeconds * Stopwatch.Frequency);
        ThreadLook look;
        ThreadLook? inAccept = null;
        do
        {
            // Prefer a reading that names the kernel function; wchan reads "0" in the instants the thread is entering
            // accept4 or being woken.
            look = ThreadLook.Of(Tid);
            if (look.InAccept && look.WaitChannel != "0") return look;
            if (look.InAccept) inAccept ??= look;
            Thread.Sleep(5);
        } while (Stopwatch.GetTimestamp() < until && _thread.IsAlive);
        return inAccept ?? look;
    }

    /// <summary>Waits for the accept to return.</summary>
    public AcceptResult? Join(TimeSpan timeout)
    {
        _thread.Join(timeout);
        if (Error != null) throw Error;
        return Result;
    }

    /// <summary>Cancels the accept (a signal wakes the thread: accept4 returns EINTR) and disposes what it accepted.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;   // twice is harmless (a chapter's clean-up cell, then Keep.One)
        _cts.Cancel();
        _thread.Join(TimeSpan.FromSeconds(2));
        Result?.ConnectionOrNull?.Dispose();
        _cts.Dispose();
        LabResources.Untrack(this);
    }
}
