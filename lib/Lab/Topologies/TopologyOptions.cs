using System.Net;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// What a topology does when accept4 fails with EMFILE (the process is out of file descriptors), or when fewer than
/// <see cref="TopologyOptions.FdHeadroom"/> are left free for the runtime.
/// </summary>
public enum EmfilePolicy
{
    /// <summary>
    /// libuv's trick (src/unix/stream.c, uv__emfile_trick): keep one spare descriptor open; on EMFILE close it,
    /// accept each queued connection and close it at once (the client sees a FIN instead of waiting in a queue
    /// nobody drains), then reopen the spare. Each refused connection is an <see cref="TopologyEventKind.AcceptEmfile"/> event.
    /// </summary>
    ReserveFd,
    /// <summary>
    /// nginx's way (ngx_event_accept: "accept() failed (24: Too many open files)" disables accept events for
    /// accept_mutex_delay): stop watching the listener for <see cref="TopologyOptions.EmfilePause"/>; connections
    /// wait in the accept queue (and overflow it) meanwhile.
    /// </summary>
    Pause,
}

/// <summary>
/// Options every topology shares, in the style of Kestrel's SocketTransportOptions: each says what it does and its
/// default. Validate with <see cref="Validate"/> (topologies do it in their constructor).
/// </summary>
public sealed record TopologyOptions
{
    /// <summary>Where to listen: "127.0.0.1:0", "[::1]:8080", "0.0.0.0:8080". Defaults to "127.0.0.1:0" (loopback, a port the kernel picks).</summary>
    public string Address { get; init; } = "127.0.0.1:0";

    /// <summary>listen(2)'s backlog. Defaults to 128; the kernel caps it at net.core.somaxconn.</summary>
    public int Backlog { get; init; } = 128;

    /// <summary>
    /// Threads that serve connections (workers, acceptors or shards, depending on the model; the single-thread loop
    /// ignores it). 1 to 256. Defaults to 2.
    /// </summary>
    public int Workers { get; init; } = 2;

    /// <summary>
    /// Most connections open at once; a connection accepted beyond it is closed at once (a
    /// <see cref="TopologyEventKind.ConnectionRejected"/> event), like Kestrel's MaxConcurrentConnections. Defaults to null: no limit.
    /// </summary>
    public int? MaxConnections { get; init; }

    /// <summary>What to do when accept4 fails with EMFILE. Defaults to <see cref="Topologies.EmfilePolicy.ReserveFd"/> (libuv's).</summary>
    public EmfilePolicy EmfilePolicy { get; init; } = EmfilePolicy.ReserveFd;

    /// <summary>How long <see cref="Topologies.EmfilePolicy.Pause"/> stops accepting. Defaults to 100 ms.</summary>
    public TimeSpan EmfilePause { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Descriptors left free for the .NET runtime: with fewer than this many free below RLIMIT_NOFILE, the topology
    /// applies <see cref="EmfilePolicy"/> as if accept4 had said EMFILE. At the limit itself the runtime cannot start a
    /// thread or load an assembly, and the process dies ("Out of memory."). 0 turns it off. Defaults to 16.
    /// </summary>
    public int FdHeadroom { get; init; } = 16;

    /// <summary>
    /// Record per-request events (Read, RequestStarted, RequestServed, Dispatch...) in <see cref="Topology.Events"/>.
    /// Turn off for benchmarks; connection events and every counter stay on. Defaults to true.
    /// </summary>
    public bool RequestEvents { get; init; } = true;

    /// <summary>How many events the ring keeps (the newest win). A power of two from 1024 to 1048576. Defaults to 65536.</summary>
    public int EventCapacity { get; init; } = 65536;

    /// <summary>
    /// TCP_NODELAY on connections that stay open after a response (responses go out at once, as nginx's tcp_nodelay on,
    /// which nginx too sets only when a connection goes keep-alive: a connection closed after its one response never
    /// waits on Nagle, so the setsockopt would be wasted). Defaults to true.
    /// </summary>
    public bool NoDelay { get; init; } = true;

    /// <summary>
    /// How long a <see cref="RequestDispatch"/> worker polls for its next request after finishing one before it sleeps
    /// (RAMCloud's WorkerManager polls for pollMicros = 10 ms). A request handed to a polling worker starts in well under
    /// a microsecond, without a futex wake; the price is a core kept busy while it polls. Defaults to 20 µs: under load
    /// the next request comes within that, so a worker never sleeps (bench/README.md: keep-alive throughput with one
    /// worker went from 0.56x nginx's to 0.97x), while an idle worker gives its core back at once, which on the 2-core
    /// lab machine leaves the load generator its share. A worker skips the poll when its last request came later than
    /// this after the one before, and stops polling when the dispatcher sleeps in epoll_wait. Zero sleeps at once.
    /// At most 100 ms.
    /// </summary>
    public TimeSpan WorkerSpin { get; init; } = TimeSpan.FromMicroseconds(20);

    /// <summary>
    /// <see cref="RequestDispatch"/> only: the dispatcher runs on the first CPU this process may use and the workers on
    /// the others, as RAMCloud gives its dispatch thread a core of its own. The dispatcher bounds the rate, and a worker
    /// woken on its CPU would preempt it: on the 2-core lab machine, with the two cores shared, the dispatcher was
    /// preempted about 27,000 times a second under wrk, 18,500 of them by its own workers (bench/README.md). Defaults to
    /// true; it does nothing when the process may use one CPU only. False leaves every thread to the scheduler. The price:
    /// a confined dispatcher cannot move away from other load on its CPU (chapter 09 flips it beside stress-ng, where
    /// keeping the core answered less).
    /// </summary>
    public bool DispatcherCore { get; init; } = true;

    /// <summary>The largest worker count a topology accepts.</summary>
    public const int MaxWorkers = 256;

    /// <summary>Checks every option and returns the parsed address; throws <see cref="ArgumentException"/> naming the bad value.</summary>
    public IPEndPoint Validate()
    {
        if (Workers is < 1 or > MaxWorkers)
            throw new ArgumentOutOfRangeException(nameof(Workers), Workers,
                $"Workers = {Workers:N0} is outside 1..{MaxWorkers}: each worker is a thread; on this {Environment.ProcessorCount}-core machine 1-{Math.Max(2, Environment.ProcessorCount * 2)} is plenty.");
        if (Backlog < 0)
            throw new ArgumentOutOfRangeException(nameof(Backlog), Backlog, $"Backlog = {Backlog} is negative; use 0 or more (the kernel caps it at net.core.somaxconn).");
        if (MaxConnections is < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, $"MaxConnections = {MaxConnections} must be at least 1, or null for no limit.");
        if (EmfilePause < TimeSpan.Zero || EmfilePause > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(EmfilePause), EmfilePause, "EmfilePause must be between 0 and 10 s.");
        if (FdHeadroom is < 0 or > 1024)
            throw new ArgumentOutOfRangeException(nameof(FdHeadroom), FdHeadroom, $"FdHeadroom = {FdHeadroom} is outside 0..1024 (descriptors left free for the runtime; 0 turns it off).");
        if (EventCapacity is < 1024 or > 1 << 20 || (EventCapacity & (EventCapacity - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(EventCapacity), EventCapacity, "EventCapacity must be a power of two from 1024 to 1048576.");
        if (WorkerSpin < TimeSpan.Zero || WorkerSpin > TimeSpan.FromMilliseconds(100))
            throw new ArgumentOutOfRangeException(nameof(WorkerSpin), WorkerSpin, "WorkerSpin must be between 0 (sleep at once) and 100 ms.");
        if (!Enum.IsDefined(EmfilePolicy))
            throw new ArgumentOutOfRangeException(nameof(EmfilePolicy), EmfilePolicy, "Use EmfilePolicy.ReserveFd or EmfilePolicy.Pause.");
        return Endpoints.Parse(Address, nameof(Address));
    }
}
