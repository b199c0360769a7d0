using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Lab.Sockets;

namespace Lab.Observe;

/// <summary>Which thread took each connection, in order (see <see cref="WakeOrder.Run"/>).</summary>
/// <param name="Takers">The thread that took connection 0, 1, 2, …; -1 where no thread took it in time.</param>
/// <param name="EmptyWakeUps">Per thread: waits that returned without a connection (woken, and another thread had it).</param>
public sealed record WakeOrderRun(IReadOnlyList<int> Takers, IReadOnlyList<int> EmptyWakeUps)
{
    /// <summary>The takers as one string, "012012…" (a '-' for a connection nobody took).</summary>
    public string Order => string.Concat(Takers.Select(t => t < 0 ? "-" : t.ToString()));

    /// <summary>How many connections each thread took.</summary>
    public IReadOnlyList<int> PerThread => Enumerable.Range(0, EmptyWakeUps.Count).Select(i => Takers.Count(t => t == i)).ToList();

    public override string ToString() => $"order {Order}; per thread {string.Join("/", PerThread)}; empty wake-ups {string.Join("/", EmptyWakeUps)}";
}

/// <summary>
/// Shows the order of a wait queue in the kernel. Each of <c>threads</c> threads waits for a connection its own way
/// (the cell's <c>takeOne</c>: a blocking accept4, an epoll_wait then accept4, …). Thread i enters its first wait
/// only once thread i − 1 sleeps in the kernel, so they queue in the order 0, 1, 2, … . Then clients connect one at
/// a time, and before each the instrument waits until every thread sleeps again: each connection meets the queue the
/// previous one left. Which thread the kernel wakes is then the queue's order, nothing else.
/// </summary>
public static class WakeOrder
{
    /// <summary>
    /// Runs the experiment against <paramref name="target"/> (loopback or a lab host). <paramref name="takeOne"/>(i, ct)
    /// waits once on thread i and returns the connection it took, or null when it woke without one; it must return
    /// when <c>ct</c> is cancelled, if need be through <paramref name="wakeAll"/> (e.g. signal an eventfd in the
    /// epolls), called once at the end. Bounded: at most 64 threads, 1,000 connections, <paramref name="within"/> (5 s)
    /// for each connection and each sleep.
    /// </summary>
    public static WakeOrderRun Run(IPEndPoint target, int threads, int connections, Func<int, CancellationToken, Connection?> takeOne,
        Action? wakeAll = null, TimeSpan? within = null)
    {
        ArgumentNullException.ThrowIfNull(takeOne);
        if (threads is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(threads), threads, "1 to 64 threads.");
        if (connections is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(connections), connections, "1 to 1,000 connections.");
        var limit = within ?? TimeSpan.FromSeconds(5);
        var tids = new int[threads];
        var empty = new int[threads];
        var taken = new BlockingCollection<int>();
        Exception? failed = null;
        using var stop = new CancellationTokenSource();
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            Volatile.Write(ref tids[i], Lab.Interop.unistd.gettid());
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    using var c = takeOne(i, stop.Token);
                    if (c != null) taken.Add(i);
                    else if (!stop.IsCancellationRequested) Interlocked.Increment(ref empty[i]);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) when (stop.IsCancellationRequested) { _ = e; }
            catch (Exception e) { failed = e; taken.Add(-2); }
        }) { IsBackground = true, Name = $"lab wake-order {i}" }).ToList();

        var takers = new List<int>();
        var clients = new List<Connection>();
        try
        {
            for (int i = 0; i < threads; i++)
            {
                workers[i].Start();
                var clock = Stopwatch.StartNew();
                while (Volatile.Read(ref tids[i]) == 0 && clock.Elapsed < limit) Thread.Sleep(1);
                AsleepOrThrow(tids[i], i, limit, () => failed);
            }
            for (int n = 0; n < connections; n++)
            {
                clients.Add(Client.Connect(target, limit));
                if (!taken.TryTake(out var who, limit)) who = -1;
                if (who == -2) throw new InvalidOperationException("A waiting thread failed: " + failed!.Message, failed);
                takers.Add(who);
                for (int i = 0; i < threads; i++) AsleepOrThrow(tids[i], i, limit, () => failed);
            }
            return new WakeOrderRun(takers, empty.ToArray());
        }
        finally
        {
            stop.Cancel();
            wakeAll?.Invoke();
            foreach (var w in workers) if (w.IsAlive) w.Join(TimeSpan.FromSeconds(5));
            foreach (var c in clients) c.Dispose();
        }
    }

    // A thread counts as waiting only asleep in a socket or event wait call (ThreadLook.AsleepInWait): a futex (a lock,
    // a managed wait, the runtime suspending threads for a GC) or a sleep does not count. Once, in CI, a test read its
    // threads as asleep in their waits when they were not, and the order came out "120200000002".
    static bool SleepsInKernel(int tid) => ThreadLook.TryOf(tid)?.AsleepInWait == true;

    static bool SleepAndRecheck(int tid) { Thread.Sleep(1); return SleepsInKernel(tid); }

    static void AsleepOrThrow(int tid, int index, TimeSpan limit, Func<Exception?> failed)
    {
        var clock = Stopwatch.StartNew();
        // Two readings 1 ms apart: a thread seen once in a wait call may be passing through it.
        while (!(SleepsInKernel(tid) && SleepAndRecheck(tid)))
        {
            if (failed() is { } e) throw new InvalidOperationException($"Thread {index} failed: {e.Message}", e);
            if (clock.Elapsed > limit)
                throw new TimeoutException($"Thread {index} (tid {tid}) did not go back to sleep in its wait within {limit.TotalSeconds:0.#} s: does takeOne wait without a timeout?");
            Thread.Sleep(1);
        }
    }
}
