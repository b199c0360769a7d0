using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Lab.Topologies;

/// <summary>What happened inside a topology (named like Kestrel's ISocketsTrace). Charts and tests read the same events.</summary>
public enum TopologyEventKind : byte
{
    /// <summary>A listening socket is open (Value: its port).</summary>
    Listen,
    /// <summary>accept4 returned a connection (Value: its fd).</summary>
    Accepted,
    /// <summary>A thread woke for the listener and accept4 found the queue empty (EAGAIN): another thread took the connection. The thundering herd.</summary>
    AcceptWouldBlock,
    /// <summary>accept4 said ECONNABORTED (or a pending network error): the connection left before it was accepted; accepting goes on.</summary>
    AcceptAborted,
    /// <summary>accept4 said EMFILE/ENFILE; the <see cref="EmfilePolicy"/> applied (Value: connections refused, or the pause in ms).</summary>
    AcceptEmfile,
    /// <summary>A sample of the accept queue found it over its limit: the kernel is dropping handshakes (Value: queue length).</summary>
    AcceptQueueOverflow,
    /// <summary>A connection over <see cref="TopologyOptions.MaxConnections"/> was closed at once.</summary>
    ConnectionRejected,
    /// <summary>The acceptor handed a connection to another thread (Value: the worker index).</summary>
    Handoff,
    /// <summary>Bytes were read from a connection (Value: how many). Per-request.</summary>
    Read,
    /// <summary>A request's work began (Value: its simulated milliseconds). Per-request.</summary>
    RequestStarted,
    /// <summary>A worker began a parsed request (Value: microseconds since the dispatcher parsed it). Per-request.</summary>
    Dispatch,
    /// <summary>A response was written (Value: the worker index). Per-request.</summary>
    RequestServed,
    /// <summary>A request could not be parsed; 400 sent and the connection closed.</summary>
    BadRequest,
    /// <summary>The peer sent FIN (read returned 0); the connection is closed.</summary>
    ReaderFin,
    /// <summary>The peer reset the connection (ECONNRESET/EPIPE).</summary>
    Reset,
    /// <summary>The server closed a connection after <c>Connection: close</c>.</summary>
    Closed,
    /// <summary>A shard stopped accepting (ReusePortShards.PauseShard; Value: shard).</summary>
    ShardPaused,
    /// <summary>A shard accepts again (Value: shard).</summary>
    ShardResumed,
    /// <summary>A shard's listener was closed (Value: shard).</summary>
    ShardClosed,
    /// <summary>A thread finished its loop (Value: its index).</summary>
    ThreadStopped,
}

/// <summary>One event: what, when (since the topology started), on which thread (the Linux thread id) and worker.</summary>
[StructLayout(LayoutKind.Auto)]
public readonly record struct TopologyEvent(TopologyEventKind Kind, TimeSpan At, int ThreadId, int Worker, long Value)
{
    public override string ToString() => $"{At.TotalMilliseconds,10:0.000} ms  tid {ThreadId,-7} w{Worker,-3} {Kind} {Value}";
}

/// <summary>
/// A bounded ring of <see cref="TopologyEvent"/>s written by many threads without locks (one interlocked increment per
/// event), and a count per kind that includes events the ring has since overwritten.
/// </summary>
public sealed class TopologyEvents
{
    struct Slot
    {
        public long Seq; // sequence + 1 once written, so 0 means empty
        public long Ticks;
        public int ThreadId, Worker;
        public long Value;
        public TopologyEventKind Kind;
    }

    readonly Slot[] _ring;
    readonly long[] _counts = new long[Enum.GetValues<TopologyEventKind>().Length];
    readonly long _origin;
    long _next;

    internal TopologyEvents(int capacity, bool requestEvents)
    {
        _ring = new Slot[capacity];
        _origin = Stopwatch.GetTimestamp();
        RequestEvents = requestEvents;
    }

    /// <summary>Whether per-request events are recorded (<see cref="TopologyOptions.RequestEvents"/>).</summary>
    public bool RequestEvents { get; }

    /// <summary>Events recorded so far, including those overwritten.</summary>
    public long Total => Volatile.Read(ref _next);

    /// <summary>How many events of <paramref name="kind"/> were recorded (never forgets, unlike the ring).</summary>
    public long Count(TopologyEventKind kind) => Volatile.Read(ref _counts[(int)kind]);

    internal void Record(TopologyEventKind kind, int worker = -1, long value = 0)
    {
        long seq = Interlocked.Increment(ref _next) - 1;
        Interlocked.Increment(ref _counts[(int)kind]);
        ref var s = ref _ring[seq & (_ring.Length - 1)];
        Volatile.Write(ref s.Seq, 0);
        s.Ticks = Stopwatch.GetTimestamp();
        s.ThreadId = ThreadIds.Current;
        s.Worker = worker;
        s.Value = value;
        s.Kind = kind;
        Volatile.Write(ref s.Seq, seq + 1);
    }

    /// <summary>The events the ring still holds, oldest first (those being written at this instant are skipped).</summary>
    public IReadOnlyList<TopologyEvent> Snapshot() => Since(0);

    /// <summary>Events with a sequence number at or after <paramref name="sequence"/> (pass <see cref="Total"/> from an earlier call to stream).</summary>
    public IReadOnlyList<TopologyEvent> Since(long sequence)
    {
        long end = Total;
        long start = Math.Max(sequence, end - _ring.Length);
        var list = new List<TopologyEvent>((int)Math.Max(0, end - start));
        for (long q = start; q < end; q++)
        {
            ref var s = ref _ring[q & (_ring.Length - 1)];
            if (Volatile.Read(ref s.Seq) != q + 1) continue;
            var e = new TopologyEvent(s.Kind, Stopwatch.GetElapsedTime(_origin, s.Ticks), s.ThreadId, s.Worker, s.Value);
            if (Volatile.Read(ref s.Seq) == q + 1) list.Add(e);
        }
        return list;
    }

    /// <summary>The held events of one kind.</summary>
    public IReadOnlyList<TopologyEvent> Of(TopologyEventKind kind) => Snapshot().Where(e => e.Kind == kind).ToList();

    /// <summary>Counts of every kind seen, e.g. "Accepted 12, ReaderFin 12".</summary>
    public override string ToString()
        => string.Join(", ", Enum.GetValues<TopologyEventKind>().Where(k => Count(k) > 0).Select(k => $"{k} {Count(k)}"));
}

/// <summary>The Linux thread id (what ps -L, /proc/self/task and strace show), cached per thread.</summary>
internal static class ThreadIds
{
    [ThreadStatic] static int _tid;

    public static int Current => _tid != 0 ? _tid : _tid = Lab.Interop.unistd.gettid();
}
