using System.Collections.Concurrent;
using System.Diagnostics;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// One thread's epoll loop: its listeners (if any), its connections, an eventfd other threads signal to hand it
/// connections or actions. Level-triggered, like libuv and nginx's default; with a shared epoll (several threads
/// waiting in one instance) every registration is EPOLLONESHOT and re-armed after handling, so one connection is
/// handled by one thread at a time.
/// </summary>
internal class EventLoop : IDisposable
{
    public const ulong WakeTag = ulong.MaxValue;
    const ulong ListenerTag = 1UL << 62;
    const int EventsPerWait = 128, IdleWaitMs = 500;

    sealed class Watch(Listener listener, EpollEvents events)
    {
        public readonly Listener Listener = listener;
        public readonly EpollEvents Events = events;
        public bool Watched, Held, Closed;
        public long ResumeAt;
    }

    protected readonly Topology T;
    public readonly int Index;
    public readonly WorkerCounters Counters;
    public readonly Epoll Epoll;
    public readonly EventFd Wake;
    public readonly SessionTable Sessions;
    readonly bool _shared;
    readonly List<Watch> _watches = new();
    readonly ConcurrentQueue<Connection> _inbox = new();
    readonly ConcurrentQueue<Action> _actions = new();

    /// <summary>A loop with its own epoll, eventfd and connections.</summary>
    public EventLoop(Topology t, WorkerCounters counters)
    {
        T = t; Index = counters.Index; Counters = counters;
        Epoll = t.Own(Epoll.Create());
        Wake = t.Own(EventFd.Create());
        Sessions = t.Own(new SessionTable());
        Epoll.Add(Wake.Handle, EpollEvents.In, WakeTag);
        t.Own(this);
    }

    /// <summary>A loop waiting in a shared epoll with shared connections (the shared eventfd is only for stopping: never drained).</summary>
    public EventLoop(Topology t, WorkerCounters counters, Epoll shared, EventFd sharedWake, SessionTable sessions)
    {
        T = t; Index = counters.Index; Counters = counters;
        Epoll = shared; Wake = sharedWake; Sessions = sessions;
        _shared = true;
        t.Own(this);
    }

    /// <summary>Closes connections handed over but never adopted (the topology stopped first).</summary>
    public void Dispose()
    {
        while (_inbox.TryDequeue(out var c)) c.Dispose();
    }

    EpollEvents Arm(EpollEvents e) => _shared ? e | EpollEvents.OneShot : e;

    /// <summary>Watches a listener for <paramref name="events"/> (In, or In|Exclusive); returns its index here.</summary>
    /// <param name="listener">The listening socket (non-blocking).</param>
    /// <param name="events">In, or In|Exclusive.</param>
    /// <param name="registered">True when another loop sharing this epoll already added it (shared epoll only).</param>
    public int WatchListener(Listener listener, EpollEvents events = EpollEvents.In, bool registered = false)
    {
        var w = new Watch(listener, events);
        _watches.Add(w);
        if (registered) w.Watched = true;
        else SetWatched(_watches.Count - 1, true);
        return _watches.Count - 1;
    }

    protected void SetWatched(int i, bool on)
    {
        var w = _watches[i];
        if (w.Watched == on || w.Closed) return;
        if (on) Epoll.Add(w.Listener.Handle, Arm(w.Events), ListenerTag | (uint)i);
        else Epoll.Delete(w.Listener.Handle);
        w.Watched = on;
    }

    protected bool IsWatched(int i) => _watches[i].Watched;

    /// <summary>Stops accepting on listener <paramref name="i"/> until <see cref="ResumeListener"/> (loop thread only).</summary>
    public void HoldListener(int i) { _watches[i].Held = true; SetWatched(i, false); }
    /// <summary>Accepts on listener <paramref name="i"/> again (loop thread only).</summary>
    public void ResumeListener(int i) { var w = _watches[i]; w.Held = false; if (w.ResumeAt == 0) SetWatched(i, true); }
    /// <summary>Stops watching listener <paramref name="i"/> and closes it (loop thread only).</summary>
    public void CloseListener(int i) { SetWatched(i, false); _watches[i].Closed = true; _watches[i].Listener.Dispose(); }

    /// <summary>Hands a connection to this loop from another thread (memcached's cq_push + a write to the notify pipe).</summary>
    public void Hand(Connection c) { _inbox.Enqueue(c); Wake.Signal(); }

    /// <summary>Runs <paramref name="action"/> on this loop's thread soon.</summary>
    public void Post(Action action) { _actions.Enqueue(action); Wake.Signal(); }

    /// <summary>Runs <paramref name="action"/> on the loop's thread and waits (at most 5 s) until it ran.</summary>
    public void Invoke(Action action)
    {
        using var done = new ManualResetEventSlim();
        Exception? failure = null;
        Post(() => { try { action(); } catch (Exception e) { failure = e; } finally { done.Set(); } });
        if (!done.Wait(TimeSpan.FromSeconds(5))) throw new TimeoutException($"Loop {Counters.Name} did not run the request within 5 s (is it stopped or stuck in a slow request?).");
        if (failure is not null) throw failure;
    }

    /// <summary>The thread body: wait, dispatch, repeat until the topology stops.</summary>
    public void Run()
    {
        Counters.Begin();
        Span<EpollEvent> events = stackalloc EpollEvent[EventsPerWait];
        try
        {
            while (!T.Stopping)
            {
                BeforeWait();
                int timeout = WaitTimeoutMs();
                Counters.Sleeping();
                int n = LastWaitCount = Epoll.Wait(events, timeout);
                Counters.Awake(n > 0);
                if (T.Stopping) break;
                for (int i = 0; i < n; i++)
                {
                    ulong d = events[i].Data;
                    if (d == WakeTag) { if (!_shared) OnWake(); }
                    else if ((d & ListenerTag) != 0) ListenerReady((int)(d & 0xFFFF));
                    else ConnectionReady((int)d, events[i].Events);
                }
                AfterBatch();
                ResumeDue();
            }
        }
        finally
        {
            Counters.End();
            T.Event(TopologyEventKind.ThreadStopped, Index, Index);
        }
    }

    /// <summary>How many events the last epoll_wait returned.</summary>
    protected int LastWaitCount { get; private set; }

    /// <summary>Called before each wait (nginx's accept mutex is taken here).</summary>
    protected virtual void BeforeWait() { }
    /// <summary>Called after each batch of events (the accept mutex is released here).</summary>
    protected virtual void AfterBatch() { }

    protected virtual int WaitTimeoutMs()
    {
        long next = 0;
        foreach (var w in _watches) if (w.ResumeAt != 0 && (next == 0 || w.ResumeAt < next)) next = w.ResumeAt;
        if (next == 0) return IdleWaitMs;
        return (int)Math.Clamp(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next).TotalMilliseconds + 1, 0, IdleWaitMs);
    }

    void ResumeDue()
    {
        for (int i = 0; i < _watches.Count; i++)
        {
            var w = _watches[i];
            if (w.ResumeAt == 0 || Stopwatch.GetTimestamp() < w.ResumeAt) continue;
            w.ResumeAt = 0;
            if (!w.Held) SetWatched(i, true);
        }
    }

    protected virtual void OnWake()
    {
        Wake.Drain();
        for (int i = 0; i < 4096 && _inbox.TryDequeue(out var c); i++) Adopt(c);
        for (int i = 0; i < 64 && _actions.TryDequeue(out var a); i++) a();
        if (!_inbox.IsEmpty || !_actions.IsEmpty) Wake.Signal(); // the rest next round
    }

    void ListenerReady(int i)
    {
        var w = _watches[i];
        if (w.Closed || !w.Watched) return;
        int n = Serving.AcceptAll(T, w.Listener, Counters, Index, AcceptedAction ??= OnAccepted);
        if (n == Serving.PauseListener)
        {
            SetWatched(i, false);
            w.ResumeAt = Stopwatch.GetTimestamp() + (long)(T.Options.EmfilePause.TotalSeconds * Stopwatch.Frequency);
        }
        else if (_shared && w.Watched) Epoll.Modify(w.Listener.Handle, Arm(w.Events), ListenerTag | (uint)i);
    }

    Action<Connection>? AcceptedAction;

    /// <summary>A connection this thread accepted: serve it here (override to hand it elsewhere).</summary>
    protected virtual void OnAccepted(Connection c) => Adopt(c);

    /// <summary>Starts serving <paramref name="c"/> on this loop.</summary>
    public void Adopt(Connection c)
    {
        HttpSession s;
        try { s = Serving.NewSession(T, c, Index, Sessions); }
        catch (ObjectDisposedException) { c.Dispose(); return; } // stopping
        Counters.Count(ref Counters.Served);
        s.Registered = EpollEvents.In;
        Epoll.Add(c.Handle, Arm(EpollEvents.In), (ulong)s.Slot);
    }

    void ConnectionReady(int slot, EpollEvents ev)
    {
        var s = Sessions.Get(slot);
        if (s is null || s.Closed) return;
        var st = OnConnection(s, ev);
        if (st != SessionState.Closed) Rearm(s, st);
    }

    /// <summary>Serves one readiness event; returns what the connection waits for next.</summary>
    protected virtual SessionState OnConnection(HttpSession s, EpollEvents ev)
    {
        var st = SessionState.WantRead;
        if ((ev & EpollEvents.Out) != 0 && s.Out is not null)
        {
            st = Serving.Flush(T, s, Index);
            if (st == SessionState.WantRead) st = Serving.ServeBuffered(T, s, Counters, Index);
        }
        if (st == SessionState.WantRead && (ev & (EpollEvents.In | EpollEvents.Err | EpollEvents.Hup | EpollEvents.RdHup)) != 0)
            st = Serving.Readable(T, s, Counters, Index);
        return st;
    }

    /// <summary>Registers what the connection now waits for (re-arming it when the epoll is shared).</summary>
    protected void Rearm(HttpSession s, SessionState st)
    {
        // A full buffer stops reading (level-triggered EPOLLIN would otherwise fire forever) until it drains.
        bool full = s.End == s.Buffer.Length && s.Buffer.Length >= HttpSession.MaxBuffer && s.Start == 0;
        var want = (full ? EpollEvents.None : EpollEvents.In) | (s.Out is not null || st == SessionState.WantWrite ? EpollEvents.Out : EpollEvents.None);
        if (!_shared && want == s.Registered) return;
        s.Registered = want;
        Epoll.Modify(s.Conn.Handle, Arm(want), (ulong)s.Slot);
    }
}
