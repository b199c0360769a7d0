// Imitates: a current io_uring server (liburing's multishot examples; tokio-uring, monoio, glommio): one thread and one
// ring per worker, each with a multishot accept armed on the shared listening socket.
// Shows: the accept path with no accept4 and no epoll_wait per connection: the kernel accepts and posts each new fd
// into the ring, and a connection's data arrives in a buffer the kernel picked, with no read call.
using Lab.Sockets;
using static Lab.Interop.errno;

namespace Lab.Topologies;

/// <summary>
/// <see cref="TopologyOptions.Workers"/> threads, each with its own io_uring. Every ring arms one multishot accept
/// (IORING_OP_ACCEPT with IORING_ACCEPT_MULTISHOT) on the one listening socket, and one multishot receive per
/// connection into a ring of provided buffers; a thread waits for all of it in one io_uring_enter. The beyond-the-notes
/// sixth model: what changes in the accept path when the kernel does the accepting. Responses go out with send(2), as
/// in the other models, so the comparison isolates the accept and read path.
/// </summary>
/// <example>
/// <code>
/// using var server = new IoUringAccept(new TopologyOptions { Workers = 2 });
/// server.Start();            // listening on server.Url
/// </code>
/// </example>
public sealed class IoUringAccept : Topology
{
    Listener? _listener;
    readonly List<RingLoop> _loops = new();

    /// <summary>An io_uring server with <paramref name="options"/> (null = defaults: 127.0.0.1, a free port, 2 workers).</summary>
    public IoUringAccept(TopologyOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => nameof(IoUringAccept);

    /// <inheritdoc/>
    protected override void StartCore()
    {
        _listener = OpenListener(Endpoint);
        LocalEndPoint = _listener.LocalEndPoint;
        for (int i = 0; i < Options.Workers; i++)
        {
            var loop = new RingLoop(this, NewCounters($"ring{i}", WorkerRole.Loop), _listener);
            _loops.Add(loop);
            StartThread($"ring{i}", loop.Run);
        }
    }

    /// <inheritdoc/>
    protected override void WakeAll() { foreach (var l in _loops) l.Wake.Signal(); }

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);
}

/// <summary>One worker's ring: its multishot accept, a multishot receive per connection, a wake-up eventfd it polls.</summary>
internal sealed class RingLoop
{
    // user_data: the kind in the top 4 bits, the connection's id below (ids are never reused, so a late completion
    // for a closed connection finds nothing).
    const int KindShift = 60;
    const ulong AcceptKind = 1, RecvKind = 2, PollOutKind = 3, WakeKind = 4, CancelKind = 5;
    const int Entries = 256, Buffers = 256, BufferSize = 4096, IdleWaitMs = 500, Batch = 128;
    const uint POLLIN = 0x001, POLLOUT = 0x004;

    sealed class Entry(HttpSession session)
    {
        public readonly HttpSession S = session;
        public bool RecvArmed, PollOutArmed;
    }

    readonly Topology T;
    readonly int Index;
    readonly WorkerCounters Counters;
    readonly Listener _listener;
    readonly IoUring _ring;
    readonly ProvidedBuffers _buffers;
    readonly SessionTable _sessions;
    readonly Dictionary<ulong, Entry> _byId = new();
    readonly Action<Connection> _adopt;
    public readonly EventFd Wake;
    ulong _nextId;
    long _acceptResumeAt;   // Environment.TickCount64 when an EMFILE pause ends; 0 when accepting
    bool _acceptArmed;

    public RingLoop(Topology t, WorkerCounters counters, Listener listener)
    {
        T = t; Index = counters.Index; Counters = counters; _listener = listener;
        _sessions = t.Own(new SessionTable());
        Wake = t.Own(EventFd.Create());
        _ring = IoUring.Create(Entries);
        try { _buffers = ProvidedBuffers.Register(_ring, count: Buffers, size: BufferSize); }
        catch { _ring.Dispose(); throw; }
        // Stop disposes in reverse: the ring first (cancelling every request, which drops its hold on the sockets),
        // then the buffers, then the sessions (close(2): the clients see the connection close).
        t.Own(_buffers);
        t.Own(_ring);
        _adopt = Adopt;
    }

    static ulong Tag(ulong kind, ulong id) => kind << KindShift | id;

    public void Run()
    {
        Counters.Begin();
        Span<Completion> batch = stackalloc Completion[Batch];
        try
        {
            _ring.Poll(Wake.Handle, POLLIN, Tag(WakeKind, 0));
            ArmAccept();
            while (!T.Stopping)
            {
                int timeout = _acceptResumeAt == 0 ? IdleWaitMs : (int)Math.Clamp(_acceptResumeAt - Environment.TickCount64, 0, IdleWaitMs);
                Counters.Sleeping();
                _ring.Wait(1, TimeSpan.FromMilliseconds(timeout));   // submits what the last round queued, in the same call
                int n = _ring.Reap(batch);
                Counters.Awake(n > 0);
                while (n > 0 && !T.Stopping)
                {
                    for (int i = 0; i < n; i++) Complete(batch[i]);
                    n = n == batch.Length ? _ring.Reap(batch) : 0;
                }
                if (_acceptResumeAt != 0 && Environment.TickCount64 >= _acceptResumeAt) { _acceptResumeAt = 0; ArmAccept(); }
            }
        }
        finally
        {
            Counters.End();
            T.Event(TopologyEventKind.ThreadStopped, Index, Index);
        }
    }

    void ArmAccept()
    {
        if (_acceptArmed || T.Stopping) return;
        _ring.Accept(_listener.Handle, Tag(AcceptKind, 0));
        _acceptArmed = true;
    }

    void Complete(Completion c)
    {
        ulong kind = c.UserData >> KindShift, id = c.UserData & ((1UL << KindShift) - 1);
        switch (kind)
        {
            case AcceptKind: Accepted(c); break;
            case RecvKind: Received(id, c); break;
            case PollOutKind: Writable(id, c); break;
            case WakeKind:
                Wake.Drain();
                if (!c.More && !T.Stopping) _ring.Poll(Wake.Handle, POLLIN, Tag(WakeKind, 0));
                break;
        }
    }

    void Accepted(Completion c)
    {
        if (!c.More) _acceptArmed = false;
        if (c.Result >= 0)
        {
            var conn = new Connection(new Fd(c.Result), null, nonBlocking: true);
            if (T.Fds.Low(T.LiveConnections)) Refuse(conn);
            else Serving.Accepted(T, conn, Counters, Index, _adopt);
        }
        else if (c.Errno is EMFILE or ENFILE)
        {
            // The kernel's accept ran out of descriptors, which ends the multishot request: pause, then arm it again.
            T.Event(TopologyEventKind.AcceptEmfile, Index, -(long)T.Options.EmfilePause.TotalMilliseconds);
            _acceptResumeAt = Environment.TickCount64 + (long)T.Options.EmfilePause.TotalMilliseconds;
            return;
        }
        else if (c.Errno is ECONNABORTED or EPROTO) T.Event(TopologyEventKind.AcceptAborted, Index, c.Errno);
        else if (c.Errno != ECANCELED) throw new SyscallException("io_uring accept", c.Errno, $"listener fd {_listener.Handle.Number}");
        if (!_acceptArmed && _acceptResumeAt == 0) ArmAccept();
    }

    /// <summary>Within the descriptor headroom: close what was accepted and pause, as the epoll loops do before accept4.</summary>
    void Refuse(Connection conn)
    {
        conn.Dispose();
        T.Event(TopologyEventKind.AcceptEmfile, Index, -(long)T.Options.EmfilePause.TotalMilliseconds);
    }

    void Adopt(Connection conn)
    {
        HttpSession s;
        try { s = Serving.NewSession(T, conn, Index, _sessions); }
        catch (ObjectDisposedException) { conn.Dispose(); return; } // stopping
        Counters.Count(ref Counters.Served);
        var e = new Entry(s);
        ulong id = ++_nextId;
        _byId[id] = e;
        _ring.Receive(conn.Handle, _buffers, Tag(RecvKind, id));
        e.RecvArmed = true;
    }

    void Received(ulong id, Completion c)
    {
        if (!_byId.TryGetValue(id, out var e))
        {
            if (c.HasBuffer) _buffers.Recycle(c.BufferId);
            return;
        }
        var s = e.S;
        if (!c.More) e.RecvArmed = false;
        if (c.Result > 0)
        {
            bool stored = Store(s, _buffers.Read(c.BufferId, c.Result));
            _buffers.Recycle(c.BufferId);
            T.RequestEvent(TopologyEventKind.Read, Index, c.Result);
            if (!stored) { Close(id, e, TopologyEventKind.Reset); return; }
            if (s.Out is null) After(id, e, Serving.ServeBuffered(T, s, Counters, Index));
            if (!s.Closed && !e.RecvArmed) { _ring.Receive(s.Conn.Handle, _buffers, Tag(RecvKind, id)); e.RecvArmed = true; }
        }
        else if (c.Result == 0) Close(id, e, TopologyEventKind.ReaderFin);
        else if (c.Errno == ENOBUFS) { _ring.Receive(s.Conn.Handle, _buffers, Tag(RecvKind, id)); e.RecvArmed = true; } // every buffer was in use: arm again
        else if (c.Errno != ECANCELED) Close(id, e, TopologyEventKind.Reset);
    }

    /// <summary>Appends received bytes to the session's buffer (compacting or growing it as Serving.Receive does); false when it cannot hold them.</summary>
    static bool Store(HttpSession s, ReadOnlySpan<byte> data)
    {
        if (s.Buffer.Length - s.End < data.Length && s.Start > 0)
        {
            s.Buffer.AsSpan(s.Start, s.End - s.Start).CopyTo(s.Buffer);
            s.End -= s.Start; s.Start = 0;
        }
        if (s.Buffer.Length - s.End < data.Length)
        {
            int need = s.End + data.Length;
            if (need > HttpSession.MaxBuffer) return false;
            var bigger = System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(need, s.Buffer.Length * 2));
            s.Buffer.AsSpan(0, s.End).CopyTo(bigger);
            System.Buffers.ArrayPool<byte>.Shared.Return(s.Buffer);
            s.Buffer = bigger;
        }
        data.CopyTo(s.Buffer.AsSpan(s.End));
        s.End += data.Length;
        return true;
    }

    void Writable(ulong id, Completion c)
    {
        if (!_byId.TryGetValue(id, out var e)) return;
        e.PollOutArmed = false;
        if (c.Result < 0) { if (c.Errno != ECANCELED) Close(id, e, TopologyEventKind.Reset); return; }
        var st = Serving.Flush(T, e.S, Index);
        if (st == SessionState.WantRead) st = Serving.ServeBuffered(T, e.S, Counters, Index);
        After(id, e, st);
    }

    /// <summary>What a served round left: a response that did not fit waits for POLLOUT; a closed session stops receiving.</summary>
    void After(ulong id, Entry e, SessionState st)
    {
        if (st == SessionState.Closed || e.S.Closed) { Forget(id, e); return; }
        if (st == SessionState.WantWrite && !e.PollOutArmed)
        {
            _ring.Poll(e.S.Conn.Handle, POLLOUT, Tag(PollOutKind, id), multishot: false);
            e.PollOutArmed = true;
        }
    }

    void Close(ulong id, Entry e, TopologyEventKind why)
    {
        Serving.Close(T, e.S, why, Index);
        Forget(id, e);
    }

    /// <summary>
    /// A closed session: cancel what the ring still holds on its socket. close(2) only drops the descriptor; an armed
    /// receive keeps the socket itself open (no FIN to the client) until the cancel completes, in the next enter.
    /// </summary>
    void Forget(ulong id, Entry e)
    {
        _byId.Remove(id);
        if (e.RecvArmed) _ring.Cancel(Tag(RecvKind, id), Tag(CancelKind, id));
        if (e.PollOutArmed) _ring.Cancel(Tag(PollOutKind, id), Tag(CancelKind, id));
        e.RecvArmed = e.PollOutArmed = false;
    }
}
