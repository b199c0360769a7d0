// Imitates: Node.js (libuv's uv_run on one thread): one thread listens, accepts and reads, all through one epoll instance.
// Shows: the simplest server that never contends with itself, and how one slow request (/sleep, /work) stalls every other connection.
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// One thread, one epoll instance, one listening socket: the listener and every connection are registered in the
/// same epoll (level-triggered). When the listener is readable the thread accepts until EAGAIN; when a connection
/// is readable it reads, parses and does the request's work right there, so while <c>/sleep?ms=200</c> sleeps,
/// nothing else on the server moves (other requests wait in their sockets' receive queues, new connections wait
/// in the accept queue). <see cref="TopologyOptions.Workers"/> is ignored: there is one thread by definition.
/// Node answers the same way: run more processes (the cluster module), which is what the other models do with threads.
/// </summary>
/// <example>
/// <code>
/// using var server = new SingleThreadLoop();
/// server.Start();            // listening on server.Url
/// server.Metrics             // one row: the loop thread
/// </code>
/// </example>
public sealed class SingleThreadLoop : Topology
{
    Listener? _listener;
    EventLoop? _loop;

    /// <summary>A single-thread loop with <paramref name="options"/> (null = defaults: 127.0.0.1, a free port, backlog 128).</summary>
    public SingleThreadLoop(TopologyOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => nameof(SingleThreadLoop);

    /// <inheritdoc/>
    protected override void StartCore()
    {
        // Non-blocking listener: accept4 in the loop must return EAGAIN, never wait, or the loop stops serving.
        _listener = OpenListener(Endpoint);
        LocalEndPoint = _listener.LocalEndPoint;
        _loop = new EventLoop(this, NewCounters("loop", WorkerRole.Loop));
        _loop.WatchListener(_listener);
        StartThread("loop", _loop.Run);
    }

    /// <inheritdoc/>
    protected override void WakeAll() => _loop?.Wake.Signal();

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);
}
