// Imitates: memcached (thread.c: dispatch_conn_new): one thread listens and accepts, then hands each connection round-robin to a worker thread.
// Shows: connection counts per worker stay equal to within one, however unequal the work those connections bring.
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// The dispatcher thread owns the listening socket in its own epoll and accepts until EAGAIN. For each connection it
/// picks the next worker in turn (memcached: <c>tid = (last_thread + 1) % settings.num_threads</c>), pushes the
/// connection onto that worker's queue (memcached's CQ_ITEM list) and signals the worker's eventfd (memcached writes
/// one byte to the worker's notify pipe, or eventfd where built with it). Each worker has its own epoll with its
/// eventfd and its connections, and serves them to the end: a connection never moves between workers.
/// </summary>
/// <remarks>
/// The round-robin is blind: it counts connections, not work. Two clients sending <c>/work?ms=50</c> land on
/// workers 0 and 1 while worker 2's connections are idle keep-alives; <see cref="TopologyMetrics"/> then shows equal
/// ConnectionsServed and very unequal BusyTime. A request from a connection on a busy worker waits for it, even when
/// other workers are idle (compare <see cref="RequestDispatch"/>).
/// </remarks>
public sealed class DispatcherWorkers : Topology
{
    Listener? _listener;
    Dispatcher? _dispatcher;
    EventLoop[] _workers = [];

    /// <summary>One dispatcher and <see cref="TopologyOptions.Workers"/> workers (default 2).</summary>
    public DispatcherWorkers(TopologyOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => nameof(DispatcherWorkers);

    /// <summary>The worker the next connection goes to (0-based among workers).</summary>
    public int NextWorker => _dispatcher?.Next ?? 0;

    /// <inheritdoc/>
    protected override void StartCore()
    {
        _listener = OpenListener(Endpoint);
        LocalEndPoint = _listener.LocalEndPoint;
        _dispatcher = new Dispatcher(this, NewCounters("disp", WorkerRole.Dispatcher));
        _workers = new EventLoop[Options.Workers];
        for (int i = 0; i < _workers.Length; i++)
            _workers[i] = new EventLoop(this, NewCounters($"w{i}", WorkerRole.Worker));
        // Workers first, so no hand-off can reach a worker that is not yet running its loop (it would only wait in the queue anyway).
        for (int i = 0; i < _workers.Length; i++) StartThread($"w{i}", _workers[i].Run);
        _dispatcher.WatchListener(_listener);
        StartThread("disp", _dispatcher.Run);
    }

    /// <inheritdoc/>
    protected override void WakeAll()
    {
        _dispatcher?.Wake.Signal();
        foreach (var w in _workers) w?.Wake.Signal();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);

    /// <summary>The accepting thread: every connection it accepts goes to a worker, none is served here.</summary>
    sealed class Dispatcher(DispatcherWorkers owner, WorkerCounters counters) : EventLoop(owner, counters)
    {
        public int Next;

        protected override void OnAccepted(Connection c)
        {
            var workers = owner._workers;
            int w = Next;
            Next = (w + 1) % workers.Length;
            T.Event(TopologyEventKind.Handoff, Index, workers[w].Index);
            try { workers[w].Hand(c); }
            catch (ObjectDisposedException) { c.Dispose(); } // the worker's eventfd closed: stopping
        }
    }
}
