// Imitates: RAMCloud's dispatch thread (src/WorkerManager.cc, handleRpc): one thread listens, accepts, reads and parses; workers only run requests.
// Shows: work spreads per request to whichever worker is idle, so a slow request never holds up another connection, at the price of a dispatch step on every request.
using System.Diagnostics;
using System.Collections.Concurrent;
using Lab.Http;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// The dispatcher thread owns the listener and every connection in one epoll. It reads and parses; each complete
/// request goes to an idle worker (the most recently idle one, as RAMCloud's dispatcher pops its idle list), or
/// waits in a FIFO when all are busy. A worker runs the request's work and posts the finished request back; the
/// dispatcher writes the response, so all socket I/O stays on one thread and the workers never touch a socket.
/// </summary>
/// <remarks>
/// Every request crosses threads twice (to a worker, and back), and the
/// dispatcher's own time bounds the server's rate: <see cref="TopologyMetrics.Dispatch"/> shows the time from
/// "parsed" to "handed to a worker" and the dispatcher's BusyTime shows how close it is to saturation. HTTP/1.1
/// keeps responses in order, so a connection has at most one request at a worker; pipelined requests wait parsed
/// in its buffer. RAMCloud's workers spin-poll for work to make the hand-off fast; these poll for
/// <see cref="TopologyOptions.WorkerSpin"/> (default 20 µs; RAMCloud's is 10 ms) and then sleep on a futex
/// (<see cref="SleepFlag"/>), which costs a wake-up but gives the core back. Unlike RAMCloud's, a worker polls only
/// when it pays: not when its requests have been coming further apart than the poll, and not while the dispatcher
/// sleeps in epoll_wait (RAMCloud's dispatch thread never sleeps). Each way a hand-off makes a system call only when the
/// other side sleeps: the dispatcher wakes a worker only if its flag is up, and a worker writes the dispatcher's eventfd
/// only if the dispatcher is (about to be) in epoll_wait. The dispatcher collects finished requests before every wait,
/// so under load the answers go out in batches with no system call per hand-off. As RAMCloud's dispatch thread has a
/// core, the dispatcher runs on the first CPU the process may use and the workers on the others
/// (<see cref="TopologyOptions.DispatcherCore"/>): a worker woken on the dispatcher's CPU would preempt the one thread
/// that bounds the rate.
/// </remarks>
public sealed class RequestDispatch : Topology
{
    Listener? _listener;
    Dispatcher? _dispatcher;
    Worker[] _workers = [];

    /// <summary>One dispatcher and <see cref="TopologyOptions.Workers"/> request workers (default 2).</summary>
    public RequestDispatch(TopologyOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => nameof(RequestDispatch);

    /// <summary>
    /// The CPUs the dispatcher may run on: the first CPU the process may use, when <see cref="TopologyOptions.DispatcherCore"/>
    /// is on and there are two or more (empty before start, or when the threads are left to the scheduler).
    /// </summary>
    public IReadOnlyList<int> DispatcherCpus { get; private set; } = [];

    /// <summary>The CPUs the workers may run on: the others (empty when the threads are left to the scheduler).</summary>
    public IReadOnlyList<int> WorkerCpus { get; private set; } = [];

    /// <inheritdoc/>
    protected override void StartCore()
    {
        var allowed = CpuAffinity.Of();
        if (Options.DispatcherCore && allowed.Length >= 2) (DispatcherCpus, WorkerCpus) = ([allowed[0]], allowed[1..]);
        _listener = OpenListener(Endpoint);
        LocalEndPoint = _listener.LocalEndPoint;
        _dispatcher = new Dispatcher(this, NewCounters("disp", WorkerRole.Dispatcher));
        _workers = new Worker[Options.Workers];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Worker(this, NewCounters($"w{i}", WorkerRole.Worker));
            _dispatcher.Idle.Push(_workers[i]);
        }
        foreach (var w in _workers) StartThread(w.Counters.Name, w.Run);
        _dispatcher.WatchListener(_listener);
        StartThread("disp", () => { Confine(DispatcherCpus); _dispatcher.Run(); });
    }

    static void Confine(IReadOnlyList<int> cpus)
    {
        if (cpus.Count > 0) CpuAffinity.Confine(cpus);
    }

    /// <inheritdoc/>
    protected override void WakeAll()
    {
        _dispatcher?.Wake.Signal();
        foreach (var w in _workers) w?.Flag.Wake();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);

    internal override DispatchCost? DispatchMetrics()
    {
        long n = 0, ticks = 0, max = 0, queued = 0, queueTicks = 0;
        foreach (var w in _workers)
        {
            if (w is null) continue;
            n += Volatile.Read(ref w.Dispatched);
            ticks += Volatile.Read(ref w.DispatchTicks);
            max = Math.Max(max, Volatile.Read(ref w.MaxDispatchTicks));
            queued += Volatile.Read(ref w.Queued);
            queueTicks += Volatile.Read(ref w.QueueTicks);
        }
        return new DispatchCost(n, n == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(0, ticks / n), Stopwatch.GetElapsedTime(0, max),
            queued, n == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(0, queueTicks / n));
    }

    /// <summary>A request thread: waits for a request, does its work, posts it back. Never reads or writes a socket.</summary>
    sealed class Worker(RequestDispatch owner, WorkerCounters counters)
    {
        public readonly WorkerCounters Counters = counters;
        public readonly SleepFlag Flag = new(); // up while this worker is (about to be) asleep: only then does the dispatcher wake it
        public HttpSession? Session; // written by the dispatcher before Flag.Wake, read here after Flag.Announce (or seen while polling)
        public long AssignedAt;      // likewise: when the dispatcher gave it Session (ParsedAt unless it waited for a worker)
        // Written by this worker only, and only for requests it began: a request queued at the moment the server
        // stops is never begun, so it counts nowhere (counting it on the dispatcher made the hand-off come out negative).
        public long Dispatched, DispatchTicks, MaxDispatchTicks, Queued, QueueTicks;

        /// <summary>
        /// Polls <see cref="Session"/> for <see cref="TopologyOptions.WorkerSpin"/> when a poll is likely to pay off;
        /// null when nothing came.
        /// </summary>
        /// <remarks>
        /// Two rules keep a poll from burning a core for nothing. It polls only if its last request came within the
        /// poll's length of its finishing the one before (at 38k requests/s over 2 workers they come about 50 µs apart,
        /// and a 20 µs poll would fail every time), and only while the dispatcher is awake: once the dispatcher waits in
        /// epoll_wait, no request can come before a packet wakes it.
        /// </remarks>
        HttpSession? Poll()
        {
            var s = Volatile.Read(ref Session);
            if (s is not null || _spinTicks == 0 || _lastGap > _spinTicks) return s;
            var dispatcher = owner._dispatcher!;
            long until = Stopwatch.GetTimestamp() + _spinTicks;
            while ((s = Volatile.Read(ref Session)) is null && !owner.Stopping && !dispatcher.Waiting && Stopwatch.GetTimestamp() < until)
                Thread.SpinWait(8);
            return s;
        }

        readonly long _spinTicks = (long)(owner.Options.WorkerSpin.TotalSeconds * Stopwatch.Frequency);
        long _finishedAt; // when this worker posted its last request back
        long _lastGap;    // from then until the dispatcher gave it the next one (not until it saw it: a wake-up's delay is not the load's)

        public void Run()
        {
            Confine(owner.WorkerCpus);
            Counters.Begin();
            while (!owner.Stopping)
            {
                // Waiting, polled or asleep, is not busy: BusyTime stays the time spent on requests.
                Counters.Sleeping();
                var s = Poll();
                if (s is null)
                {
                    // Announce the sleep, then look once more: an Assign between the poll and the flag would otherwise
                    // find the flag down, not wake this worker, and leave it asleep on a waiting request.
                    Flag.Announce();
                    s = Volatile.Read(ref Session);
                    if (s is null)
                    {
                        Flag.Sleep(TimeSpan.FromMilliseconds(500)); // returns at once if the dispatcher took the flag down first
                        s = Volatile.Read(ref Session);
                    }
                    Flag.Retract(); // a wake that comes after this finds the flag down and makes no call
                }
                Counters.Awake(s is not null);
                if (s is null || owner.Stopping) continue;
                if (_finishedAt != 0) _lastGap = Math.Max(0, Volatile.Read(ref AssignedAt) - _finishedAt);
                long waited = Stopwatch.GetTimestamp() - s.ParsedAt;
                long queuedFor = Volatile.Read(ref AssignedAt) - s.ParsedAt;
                if (queuedFor > 0) { Volatile.Write(ref Queued, Queued + 1); Volatile.Write(ref QueueTicks, QueueTicks + queuedFor); }
                Volatile.Write(ref DispatchTicks, DispatchTicks + waited);
                if (waited > MaxDispatchTicks) Volatile.Write(ref MaxDispatchTicks, waited);
                Volatile.Write(ref Dispatched, Dispatched + 1);
                owner.RequestEvent(TopologyEventKind.Dispatch, Counters.Index, (long)Stopwatch.GetElapsedTime(0, waited).TotalMicroseconds);
                owner.RequestEvent(TopologyEventKind.RequestStarted, Counters.Index, s.Request.Milliseconds);
                if (s.Request.Route == Route.Sleep) Counters.Count(ref Counters.Waits);
                TinyHttp.Perform(s.Request);
                Counters.Count(ref Counters.Requests);
                owner.RequestEvent(TopologyEventKind.RequestServed, Counters.Index, Counters.Index);
                Volatile.Write(ref Session, null);
                _finishedAt = Stopwatch.GetTimestamp();
                owner._dispatcher!.Done.Enqueue((this, s));
                try { owner._dispatcher.Nudge(); } catch (ObjectDisposedException) { break; }
            }
            Counters.End();
        }
    }

    /// <summary>The one thread that touches sockets: accepts, reads, parses, dispatches, writes responses.</summary>
    sealed class Dispatcher(RequestDispatch owner, WorkerCounters counters) : EventLoop(owner, counters)
    {
        public readonly Stack<Worker> Idle = new();
        public readonly ConcurrentQueue<(Worker, HttpSession)> Done = new();
        readonly Queue<HttpSession> _waiting = new();
        readonly HashSet<HttpSession> _halfClosed = new(); // sent FIN while a worker had their request: answered, then closed
        // Up from just before a blocking epoll_wait until the batch after it: only then does a finished request write Wake.
        // The dispatcher sleeps in epoll_wait, not on the flag's futex, so a finished request takes the flag down and
        // writes the eventfd itself.
        readonly SleepFlag _asleep = new();

        /// <summary>Tells the dispatcher a request finished: an eventfd write only if it is (about to be) in epoll_wait.</summary>
        public void Nudge()
        {
            if (_asleep.TakeDown()) Wake.Signal();
        }

        // Finished requests are collected before every wait, not only when Wake fires: under load the dispatcher never
        // sleeps, workers never write the eventfd, and the answers go out in batches.
        protected override void BeforeWait() => CollectDone();

        /// <summary>True while the dispatcher is (about to be) asleep in epoll_wait: polling workers stop polling then.</summary>
        public bool Waiting => _asleep.Up;

        protected override int WaitTimeoutMs()
        {
            int timeout = base.WaitTimeoutMs();
            // After a batch, look without sleeping first: under load the next events are already there, and the flag
            // stays down, so workers keep polling and finish without writing Wake. Only an empty look raises the flag.
            if (timeout == 0 || LastWaitCount > 0) return 0;
            // The flag first, with a full fence, then one more look: a request finished after CollectDone either is
            // seen here (no sleep) or finds the flag up and writes Wake.
            _asleep.Announce();
            if (Done.IsEmpty) return timeout;
            _asleep.Retract();
            return 0;
        }

        protected override void AfterBatch() => _asleep.Retract();

        protected override SessionState OnConnection(HttpSession s, EpollEvents ev)
        {
            var st = s.Busy ? SessionState.Busy : SessionState.WantRead;
            if ((ev & EpollEvents.Out) != 0 && s.Out is not null)
            {
                st = Serving.Flush(T, s, Index);
                if (st == SessionState.WantRead) st = DispatchNext(s);
            }
            if (st != SessionState.Closed && (ev & (EpollEvents.In | EpollEvents.Err | EpollEvents.Hup | EpollEvents.RdHup)) != 0)
            {
                if (s.Busy && (ev & (EpollEvents.Err | EpollEvents.Hup)) == 0 && s.Conn.InQueue == 0)
                {
                    // Readable with nothing to read and no error: a FIN while a worker has the request. A half-closed
                    // client still wants its answer (RFC 9112 section 9.6; the other models answer it because they
                    // write before they read again). Stop watching it (level-triggered EPOLLIN would fire for the FIN
                    // until it is read) until the answer is out; OnWake closes it then. Seen by FaultTests: a client
                    // that sent a request and shutdown(SHUT_WR) got a close and no response here, and only here.
                    _halfClosed.Add(s);
                    s.Registered = EpollEvents.None;
                    Epoll.Modify(s.Conn.Handle, EpollEvents.None, (ulong)s.Slot);
                    return SessionState.Closed; // not closed: tells ConnectionReady not to re-arm it
                }
                var r = Serving.Receive(T, s, Index); // a reset while a worker has the request: closed now, its answer dropped
                if (r == SessionState.Closed) { _halfClosed.Remove(s); return r; }
                if (st == SessionState.WantRead && s.Out is null) st = DispatchNext(s);
            }
            return st;
        }

        /// <summary>Parses the next buffered request and gives it to an idle worker, or queues it.</summary>
        SessionState DispatchNext(HttpSession s)
        {
            var st = Serving.Next(T, s, Index, out var request);
            if (st != SessionState.Busy) return st;
            s.Request = request;
            s.ParsedAt = Stopwatch.GetTimestamp();
            if (Idle.TryPop(out var w)) Assign(w, s, queued: false);
            else _waiting.Enqueue(s);
            return SessionState.Busy;
        }

        void Assign(Worker w, HttpSession s, bool queued)
        {
            Volatile.Write(ref w.AssignedAt, queued ? Stopwatch.GetTimestamp() : s.ParsedAt);
            Volatile.Write(ref w.Session, s);
            // A polling worker sees Session itself: no system call. A sleeping one is woken.
            w.Flag.Wake();
        }

        protected override void OnWake()
        {
            base.OnWake();
            CollectDone();
        }

        /// <summary>Writes the answers of finished requests and gives their workers the next waiting request.</summary>
        void CollectDone()
        {
            for (int i = 0; i < 4096 && Done.TryDequeue(out var item); i++)
            {
                var (w, s) = item;
                HttpSession? next = null;
                while (_waiting.TryDequeue(out var q)) if (!q.Closed) { next = q; break; }
                if (next is not null) Assign(w, next, queued: true);
                else Idle.Push(w);
                if (s.Closed) { _halfClosed.Remove(s); continue; }
                s.Busy = false;
                var st = Serving.Send(T, s, TinyHttp.ResponseArray(s.Request), !s.Request.KeepAlive, Index);
                if (st == SessionState.WantRead) st = DispatchNext(s);
                if (st == SessionState.Closed) { _halfClosed.Remove(s); continue; }
                if (!s.Busy && _halfClosed.Remove(s))
                {
                    // Answered (or still writing: then the FIN is read as usual once the answer is out).
                    if (st == SessionState.WantRead) { Serving.Close(T, s, TopologyEventKind.ReaderFin, Index); continue; }
                }
                Rearm(s, st);
            }
        }
    }
}
