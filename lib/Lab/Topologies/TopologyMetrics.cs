using System.Diagnostics;
using System.Text;

namespace Lab.Topologies;

/// <summary>What a thread does in its topology.</summary>
public enum WorkerRole
{
    /// <summary>Listens, accepts and reads (the single-thread loop, a shard, an acceptor that serves its own connections).</summary>
    Loop,
    /// <summary>Accepts (and in request dispatch also reads and parses) and hands work on.</summary>
    Dispatcher,
    /// <summary>Serves what a dispatcher hands it: connections, or parsed requests.</summary>
    Worker,
    /// <summary>Only accepts (blocking accept) and hands each connection to its partner worker.</summary>
    Acceptor,
}

/// <summary>One thread's counters at one moment.</summary>
/// <param name="Index">Its index among threads of its role.</param>
/// <param name="Name">Its thread name (as /proc/self/task/*/comm shows, up to 15 characters).</param>
/// <param name="Role">What it does.</param>
/// <param name="ThreadId">Its Linux thread id (0 before it ran).</param>
/// <param name="ConnectionsAccepted">accept4 calls that returned a connection on this thread.</param>
/// <param name="ConnectionsServed">Connections this thread read from (accepted here or handed over).</param>
/// <param name="RequestsServed">Requests whose work this thread did (the response follows).</param>
/// <param name="BusyTime">Time not spent waiting (in epoll_wait, accept4 or for a hand-off).</param>
/// <param name="WakeUps">Times the thread woke from its wait with something reported.</param>
/// <param name="EmptyWakeUps">Wake-ups for the listener that found its accept queue empty (accept4 said EAGAIN: another thread got there first).</param>
/// <param name="Waits">Calls that could sleep (epoll_wait, blocking accept4, a worker's wait for work, a /sleep request).</param>
/// <param name="SilentWakeUps">
/// Times the kernel woke this thread and it went back to sleep without the program seeing anything: the part of a
/// thundering herd epoll hides (ep_poll re-checks readiness after waking and sleeps again when another thread
/// already took the connection). Read as the thread's voluntary context switches (/proc/self/task/TID/status)
/// beyond one per wait: a lower bound, to which a GC pause can add one.
/// </param>
public sealed record WorkerMetrics(int Index, string Name, WorkerRole Role, int ThreadId, long ConnectionsAccepted, long ConnectionsServed,
    long RequestsServed, TimeSpan BusyTime, long WakeUps, long EmptyWakeUps, long Waits, long SilentWakeUps);

/// <summary>What dispatching parsed requests cost the request-dispatch model.</summary>
/// <param name="Dispatched">Requests given to workers.</param>
/// <param name="Mean">Mean time from "request parsed" on the dispatcher to "work begins" on a worker: the queue wait plus the hand-off (a semaphore release and the worker's wake-up).</param>
/// <param name="Max">The longest such time.</param>
/// <param name="Queued">Requests that found no idle worker and waited in the dispatcher's FIFO.</param>
/// <param name="MeanQueueWait">Of <see cref="Mean"/>, the part spent waiting for an idle worker (averaged over all dispatched requests).</param>
public sealed record DispatchCost(long Dispatched, TimeSpan Mean, TimeSpan Max, long Queued, TimeSpan MeanQueueWait)
{
    /// <summary>The hand-off alone: <see cref="Mean"/> minus <see cref="MeanQueueWait"/>.</summary>
    public TimeSpan MeanHandoff => Mean - MeanQueueWait;
}


/// <summary>A topology's counters at one moment: one row per thread, and totals.</summary>
public sealed record TopologyMetrics(string Topology, TimeSpan Uptime, IReadOnlyList<WorkerMetrics> Workers, long LiveConnections,
    long BadRequests, DispatchCost? Dispatch)
{
    /// <summary>Connections accepted by every thread.</summary>
    public long ConnectionsAccepted => Workers.Sum(w => w.ConnectionsAccepted);
    /// <summary>Requests served by every thread (each request is counted once, by the thread that did its work).</summary>
    public long RequestsServed => Workers.Sum(w => w.RequestsServed);
    /// <summary>Listener wake-ups that found nothing, over every thread.</summary>
    public long EmptyWakeUps => Workers.Sum(w => w.EmptyWakeUps);
    /// <summary>Wake-ups the kernel gave and took back inside epoll_wait, over every thread (see <see cref="WorkerMetrics.SilentWakeUps"/>).</summary>
    public long SilentWakeUps => Workers.Sum(w => w.SilentWakeUps);

    /// <summary>A table like the CLI prints.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{Topology}: up {Uptime.TotalSeconds:0.0} s, {LiveConnections} open connections, {ConnectionsAccepted} accepted, {RequestsServed} requests" +
                      (BadRequests > 0 ? $", {BadRequests} bad" : ""));
        sb.AppendLine($"  {"thread",-8} {"tid",7} {"accepted",9} {"served",8} {"requests",9} {"busy ms",9} {"wakeups",8} {"empty",7} {"silent",7}");
        foreach (var w in Workers)
            sb.AppendLine($"  {w.Name,-8} {w.ThreadId,7} {w.ConnectionsAccepted,9} {w.ConnectionsServed,8} {w.RequestsServed,9} {w.BusyTime.TotalMilliseconds,9:0} {w.WakeUps,8} {w.EmptyWakeUps,7} {w.SilentWakeUps,7}");
        if (Dispatch is { } d)
            sb.AppendLine($"  dispatch: {d.Dispatched} requests, parsed to working mean {d.Mean.TotalMicroseconds:0.0} µs (hand-off {d.MeanHandoff.TotalMicroseconds:0.0} µs, waiting for a worker {d.MeanQueueWait.TotalMicroseconds:0.0} µs), max {d.Max.TotalMicroseconds:0} µs; {d.Queued} waited");
        return sb.ToString();
    }
}

/// <summary>
/// One thread's live counters. Only the owning thread writes them (plain stores, no interlocked traffic on the hot
/// path); other threads read them with Volatile reads, so a snapshot taken while running may be a moment old.
/// </summary>
internal sealed class WorkerCounters(int index, string name, WorkerRole role)
{
    public readonly int Index = index;
    public readonly string Name = name;
    public readonly WorkerRole Role = role;
    public int ThreadId;
    public long Accepted, Served, Requests, BusyTicks, WakeUps, EmptyWakeUps, Waits;
    long _busySince, _switchesAtStart = -1, _switchesAtEnd = -1;

    /// <summary>Call when the thread starts running.</summary>
    public void Begin()
    {
        ThreadId = ThreadIds.Current;
        _switchesAtStart = VoluntarySwitches(ThreadId);
        _busySince = Stopwatch.GetTimestamp();
    }

    /// <summary>Call when the thread's loop ends (its /proc/self/task entry goes with it).</summary>
    public void End() => Volatile.Write(ref _switchesAtEnd, VoluntarySwitches(ThreadId));

    /// <summary>Call before a wait: the time since <see cref="Awake"/> was busy.</summary>
    public void Sleeping()
    {
        long now = Stopwatch.GetTimestamp();
        Volatile.Write(ref BusyTicks, BusyTicks + (now - _busySince));
        Volatile.Write(ref Waits, Waits + 1);
    }

    /// <summary>Call after a wait returns; <paramref name="something"/> counts a wake-up.</summary>
    public void Awake(bool something)
    {
        _busySince = Stopwatch.GetTimestamp();
        if (something) Volatile.Write(ref WakeUps, WakeUps + 1);
    }

    public void Count(ref long field) => Volatile.Write(ref field, field + 1);

    /// <summary>voluntary_ctxt_switches of a thread of this process, or -1 when it is gone.</summary>
    static long VoluntarySwitches(int tid)
    {
        if (tid == 0) return -1;
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/task/{tid}/status"))
                if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(24).Trim());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return -1;
    }

    long Silent()
    {
        long start = Volatile.Read(ref _switchesAtStart);
        long now = Volatile.Read(ref _switchesAtEnd);
        if (now < 0) now = VoluntarySwitches(Volatile.Read(ref ThreadId));
        if (start < 0 || now < 0) return 0;
        return Math.Max(0, now - start - Volatile.Read(ref Waits));
    }

    public WorkerMetrics Snapshot() => new(Index, Name, Role, Volatile.Read(ref ThreadId), Volatile.Read(ref Accepted), Volatile.Read(ref Served),
        Volatile.Read(ref Requests), Stopwatch.GetElapsedTime(0, Volatile.Read(ref BusyTicks)), Volatile.Read(ref WakeUps), Volatile.Read(ref EmptyWakeUps),
        Volatile.Read(ref Waits), Silent());
}
