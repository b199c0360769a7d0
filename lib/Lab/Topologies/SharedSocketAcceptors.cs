// Imitates: nginx workers sharing one listening socket (ngx_event_accept), with its accept_mutex, EPOLLEXCLUSIVE, or neither; and Apache-style blocking accept.
// Shows: how the kernel picks which waiting thread gets a connection: FIFO for blocking accept, everyone (thundering herd) for plain epoll, fewer for EPOLLEXCLUSIVE, LIFO for one shared epoll.
using Lab.Sockets;
using static Lab.Interop.errno;

namespace Lab.Topologies;

/// <summary>How the threads of <see cref="SharedSocketAcceptors"/> wait for the one listening socket.</summary>
public enum AcceptorVariant
{
    /// <summary>
    /// Every acceptor thread sits in a blocking accept4 on the one socket. inet_csk_wait_for_connect queues
    /// waiters with prepare_to_wait_exclusive (at the tail) and a new connection wakes the head: FIFO, so sequential
    /// connections go round-robin. Each acceptor hands its connections to its own reader thread (a blocked accept4
    /// cannot also serve).
    /// </summary>
    BlockingAccept,
    /// <summary>
    /// Every thread's own epoll watches the shared non-blocking socket (level-triggered). Each epoll hooks the
    /// socket's wait queue non-exclusively, so a connection wakes every idle thread; all but one find EAGAIN
    /// (counted as EmptyWakeUps): the thundering herd.
    /// </summary>
    EpollPerThread,
    /// <summary>
    /// As <see cref="EpollPerThread"/> with EPOLLEXCLUSIVE (Linux 4.5): each epoll hooks the socket's wait queue
    /// exclusively, at the tail, and a wake-up stops at the first epoll that has a waiter, so the earliest
    /// registered idle thread tends to win and far fewer wake for nothing ("one or more", not exactly one).
    /// </summary>
    EpollExclusive,
    /// <summary>
    /// One epoll instance shared by every thread, holding the listener and all connections (EPOLLONESHOT, re-armed
    /// after each use). epoll_wait queues its waiters at the head of the epoll's wait queue (__add_wait_queue_exclusive),
    /// so the thread that most recently went back to waiting gets the next event: LIFO. Each connection brings two events
    /// here (the connection, then its request), each taken by whoever waited last, so the turn keeps moving: under light
    /// load the lab measured no single thread taking most connections (chapter 10).
    /// </summary>
    SharedEpoll,
    /// <summary>
    /// nginx's accept_mutex: only the thread holding a mutex has the listener in its epoll; the others retry the
    /// mutex every <see cref="SharedSocketAcceptors.AcceptMutexDelay"/> (nginx's accept_mutex_delay). No herd,
    /// at the price of a delay when the holder is busy.
    /// </summary>
    AcceptMutex,
}

/// <summary>
/// N threads accept on one listening socket, each serving the connections it accepted in its own epoll (except
/// <see cref="AcceptorVariant.SharedEpoll"/>, where whichever thread wakes serves the event). The variant decides
/// which thread the kernel wakes for a new connection; WorkerMetrics.ConnectionsAccepted shows the spread and
/// EmptyWakeUps the herd.
/// </summary>
public sealed class SharedSocketAcceptors : Topology
{
    Listener? _listener;
    EventLoop[] _loops = [];
    int _mutex; // 0 free, 1 held: nginx's ngx_accept_mutex (a shared-memory lock between processes there)

    /// <summary><see cref="TopologyOptions.Workers"/> threads (default 2) accepting on one socket the way <paramref name="variant"/> says.</summary>
    /// <param name="options">Shared options; null for the defaults.</param>
    /// <param name="variant">How the threads wait. Defaults to <see cref="AcceptorVariant.EpollPerThread"/>.</param>
    /// <param name="acceptMutexDelay">How often a thread without the accept mutex retries it. Defaults to 500 ms (nginx's accept_mutex_delay).</param>
    public SharedSocketAcceptors(TopologyOptions? options = null, AcceptorVariant variant = AcceptorVariant.EpollPerThread, TimeSpan? acceptMutexDelay = null)
        : base(options)
    {
        if (!Enum.IsDefined(variant)) throw new ArgumentOutOfRangeException(nameof(variant), variant, $"Use one of {string.Join(", ", Enum.GetNames<AcceptorVariant>())}.");
        Variant = variant;
        AcceptMutexDelay = acceptMutexDelay ?? TimeSpan.FromMilliseconds(500);
        if (AcceptMutexDelay <= TimeSpan.Zero || AcceptMutexDelay > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(acceptMutexDelay), AcceptMutexDelay, "The accept mutex delay must be between 1 ms and 10 s.");
    }

    /// <summary>How the threads wait for connections.</summary>
    public AcceptorVariant Variant { get; }
    /// <inheritdoc/>
    public override EmfilePolicy EmfileHandling => Variant == AcceptorVariant.BlockingAccept ? EmfilePolicy.Pause : base.EmfileHandling;

    /// <summary>How often a thread without the accept mutex retries it (<see cref="AcceptorVariant.AcceptMutex"/> only). Defaults to 500 ms.</summary>
    public TimeSpan AcceptMutexDelay { get; }

    /// <inheritdoc/>
    public override string Name => $"{nameof(SharedSocketAcceptors)}/{Variant}";

    /// <inheritdoc/>
    protected override void StartCore()
    {
        // Blocking accept needs a blocking socket: the kernel parks each thread inside accept4 (wchan inet_csk_accept).
        _listener = OpenListener(Endpoint, nonBlocking: Variant != AcceptorVariant.BlockingAccept);
        LocalEndPoint = _listener.LocalEndPoint;
        if (Variant == AcceptorVariant.BlockingAccept)
            Sys.SetTimeval(_listener.Handle, Lab.Interop.sys_socket.SO_RCVTIMEO, TimeSpan.Zero, "SO_RCVTIMEO (0: accept4 waits without limit)");
        int n = Options.Workers;
        _loops = new EventLoop[n];
        switch (Variant)
        {
            case AcceptorVariant.BlockingAccept:
                var acceptors = new WorkerCounters[n];
                for (int i = 0; i < n; i++) acceptors[i] = NewCounters($"acc{i}", WorkerRole.Acceptor);
                for (int i = 0; i < n; i++) _loops[i] = new EventLoop(this, NewCounters($"rd{i}", WorkerRole.Worker));
                for (int i = 0; i < n; i++) StartThread($"rd{i}", _loops[i].Run);
                for (int i = 0; i < n; i++)
                {
                    var (c, loop) = (acceptors[i], _loops[i]);
                    StartThread($"acc{i}", () => BlockingAcceptLoop(c, loop));
                }
                return;
            case AcceptorVariant.SharedEpoll:
                var epoll = Own(Epoll.Create());
                var wake = Own(EventFd.Create());
                var sessions = Own(new SessionTable());
                epoll.Add(wake.Handle, EpollEvents.In, EventLoop.WakeTag); // level-triggered, never drained: one Signal wakes every waiter
                for (int i = 0; i < n; i++)
                {
                    _loops[i] = new EventLoop(this, NewCounters($"t{i}", WorkerRole.Loop), epoll, wake, sessions);
                    _loops[i].WatchListener(_listener, EpollEvents.In, registered: i > 0);
                }
                break;
            case AcceptorVariant.AcceptMutex:
                for (int i = 0; i < n; i++) _loops[i] = new MutexLoop(this, NewCounters($"t{i}", WorkerRole.Loop), _listener);
                break;
            default:
                var events = Variant == AcceptorVariant.EpollExclusive ? EpollEvents.In | EpollEvents.Exclusive : EpollEvents.In;
                for (int i = 0; i < n; i++)
                {
                    _loops[i] = new EventLoop(this, NewCounters($"t{i}", WorkerRole.Loop));
                    _loops[i].WatchListener(_listener, events);
                }
                break;
        }
        for (int i = 0; i < n; i++) StartThread($"t{i}", _loops[i].Run);
    }

    /// <summary>One acceptor: blocking accept4 in the kernel's FIFO of waiters, then a hand-off to its reader.</summary>
    void BlockingAcceptLoop(WorkerCounters c, EventLoop reader)
    {
        c.Begin();
        var listener = _listener!;
        Action<Connection> handOff = conn =>
        {
            Event(TopologyEventKind.Handoff, c.Index, reader.Index);
            try { reader.Hand(conn); }
            catch (ObjectDisposedException) { conn.Dispose(); } // the reader's eventfd is closed: stopping
        };
        while (!Stopping)
        {
            if (Fds.Low(LiveConnections)) { PauseForDescriptors(c.Index); continue; }
            c.Sleeping();
            var (conn, err) = BlockingAccept(listener);
            c.Awake(conn is not null);
            if (conn is not null) { Serving.Accepted(this, conn, c, c.Index, handOff); continue; }
            if (Stopping) break;
            if (err is EMFILE or ENFILE) PauseForDescriptors(c.Index);
            else if (err is ECONNABORTED or EPROTO or ENETDOWN or ENOPROTOOPT or EHOSTDOWN or ENONET or EHOSTUNREACH or EOPNOTSUPP or ENETUNREACH)
                Event(TopologyEventKind.AcceptAborted, c.Index, err);
            else if (err != EAGAIN)
                throw Sys.Fail("accept4", Endpoints.Format(listener.LocalEndPoint), err, listener.LocalEndPoint);
        }
        c.End();
        Event(TopologyEventKind.ThreadStopped, c.Index, c.Index);
    }

    /// <summary>
    /// accept4 that waits without a time limit, written out so the chapter's model shows the bare call: the listener's
    /// SO_RCVTIMEO is 0 (wait forever), and Stop wakes every waiter with shutdown(SHUT_RD) (inet_shutdown on a listener
    /// stops it and wakes accept4, which returns EINVAL). <see cref="Listener.Accept"/> keeps the same FIFO order and
    /// is woken by a signal instead, so it can stop one waiter and leave the listener open.
    /// </summary>
    static unsafe (Connection?, int) BlockingAccept(Listener listener)
    {
        Lab.Interop.sockaddr_union sa = default;
        Tmds.Linux.socklen_t len = SockAddr.MaxLength;
        int fd;
        try
        {
            using var b = Sys.Borrow(listener.Handle);
            do fd = Tmds.Linux.LibC.accept4(b.Fd, (Tmds.Linux.sockaddr*)&sa, &len, (int)Serving.Flags);
            while (Sys.Interrupted(fd));
            if (fd < 0) return (null, Sys.Errno);
        }
        catch (ObjectDisposedException) { return (null, EINVAL); }
        return (new Connection(new Fd(fd), SockAddr.ToEndPoint(sa), nonBlocking: true, listener.LocalEndPoint), 0);
    }

    static unsafe void ShutdownRead(Listener listener)
    {
        try
        {
            using var b = Sys.Borrow(listener.Handle);
            Tmds.Linux.LibC.shutdown(b.Fd, (int)ShutdownHow.Read);
        }
        catch (ObjectDisposedException) { }
    }

    /// <inheritdoc/>
    protected override void WakeAll()
    {
        if (Variant == AcceptorVariant.BlockingAccept && _listener is not null) ShutdownRead(_listener);
        foreach (var l in _loops) l?.Wake.Signal();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);

    /// <summary>
    /// nginx's ngx_process_events_and_timers: try the mutex before waiting; holding it, put the listener in this
    /// epoll; not holding it, take the listener out and wait at most accept_mutex_delay before trying again.
    /// Release it after the batch (nginx: after the posted accept events, before the other events).
    /// </summary>
    sealed class MutexLoop : EventLoop
    {
        readonly SharedSocketAcceptors _owner;
        readonly int _watch;
        bool _holding;

        public MutexLoop(SharedSocketAcceptors owner, WorkerCounters counters, Listener listener) : base(owner, counters)
        {
            _owner = owner;
            _watch = WatchListener(listener);
            SetWatched(_watch, false);
        }

        protected override void BeforeWait()
        {
            if (Interlocked.CompareExchange(ref _owner._mutex, 1, 0) == 0)
            {
                _holding = true;
                SetWatched(_watch, true);
            }
            else SetWatched(_watch, false); // another thread holds it: ngx_disable_accept_events
        }

        protected override int WaitTimeoutMs() => _holding ? base.WaitTimeoutMs() : (int)Math.Max(1, _owner.AcceptMutexDelay.TotalMilliseconds);

        protected override void AfterBatch()
        {
            if (!_holding) return;
            _holding = false;
            Volatile.Write(ref _owner._mutex, 0);
        }
    }
}
