using System.Diagnostics;
using System.Net;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>A server model from the notes: who listens, who accepts, who reads.</summary>
public interface ITopology : IDisposable
{
    /// <summary>The model's name, e.g. "SingleThreadLoop".</summary>
    string Name { get; }
    /// <summary>Where it listens (after <see cref="Start"/>; port 0 resolved).</summary>
    IPEndPoint LocalEndPoint { get; }
    /// <summary>Opens the listening socket(s) and starts the threads; returns once listening.</summary>
    void Start();
    /// <summary>Stops the threads and closes every socket, waiting at most <paramref name="timeout"/>; says what did not stop.</summary>
    StopReport Stop(TimeSpan timeout);
    /// <summary>Every thread's counters now.</summary>
    TopologyMetrics Metrics { get; }
    /// <summary>The named events so far.</summary>
    TopologyEvents Events { get; }
    /// <summary>Each listening socket's accept queue now (one per shard for SO_REUSEPORT, else one).</summary>
    IReadOnlyList<AcceptQueueReading> AcceptQueues();
}

/// <summary>What <see cref="Topology.Stop"/> found: whether every thread ended in time, and what did not.</summary>
public sealed record StopReport(bool Stopped, TimeSpan Took, IReadOnlyList<string> NotStopped, IReadOnlyList<string> Failures)
{
    public override string ToString() => Stopped
        ? $"stopped in {Took.TotalMilliseconds:0} ms" + (Failures.Count > 0 ? $"; failures: {string.Join("; ", Failures)}" : "")
        : $"NOT stopped after {Took.TotalMilliseconds:0} ms: {string.Join(", ", NotStopped)} still running (background threads; their sockets were closed)";
}

/// <summary>
/// The shared skeleton of every topology: options, start/stop, threads named "lab-topo ...", the resources to close,
/// counters and events. A model's file only says who listens, accepts and reads.
/// </summary>
public abstract class Topology : ITopology
{
    /// <summary>How long <see cref="Dispose"/> waits for threads to stop.</summary>
    public static readonly TimeSpan DefaultStopTimeout = TimeSpan.FromSeconds(5);

    readonly object _gate = new();
    readonly List<Thread> _threads = new();
    readonly List<IDisposable> _owned = new();
    readonly List<WorkerCounters> _counters = new();
    readonly List<string> _failures = new();
    readonly CancellationTokenSource _stop = new();
    readonly CancellationTokenSource _failed = new();
    Exception? _firstFailure;
    StopReport? _stopReport;
    int _state; // 0 new, 1 running, 2 stopped
    long _started;
    long _live, _badRequests;

    /// <summary>Validates <paramref name="options"/> (null = defaults) and parses the address; nothing is opened yet.</summary>
    protected Topology(TopologyOptions? options)
    {
        Options = options ?? new TopologyOptions();
        Endpoint = Options.Validate();
        Events = new TopologyEvents(Options.EventCapacity, Options.RequestEvents);
        Reserve = new ReserveFd();
    }

    /// <summary>The options it was made with.</summary>
    public TopologyOptions Options { get; }
    /// <summary>
    /// What it does when accept4 says EMFILE: <see cref="TopologyOptions.EmfilePolicy"/>, except where acceptor threads
    /// sit in a blocking accept (an acceptor owns its thread; there is no loop to keep serving), which always pause.
    /// </summary>
    public virtual EmfilePolicy EmfileHandling => Options.EmfilePolicy;
    /// <inheritdoc/>
    public abstract string Name { get; }
    /// <inheritdoc/>
    public TopologyEvents Events { get; }
    /// <summary>The address from <see cref="TopologyOptions.Address"/>, parsed.</summary>
    protected IPEndPoint Endpoint { get; }
    /// <inheritdoc/>
    public IPEndPoint LocalEndPoint { get; protected set; } = new(IPAddress.None, 0);
    /// <summary>The bound port.</summary>
    public int Port => LocalEndPoint.Port;
    /// <summary>"http://127.0.0.1:PORT/", for curl and wrk.</summary>
    public string Url => $"http://{Endpoints.Format(LocalEndPoint)}/";
    /// <summary>True between <see cref="Start"/> and <see cref="Stop"/>.</summary>
    public bool Running => Volatile.Read(ref _state) == 1;
    /// <summary>Unexpected errors that ended a thread (empty when all is well).</summary>
    public IReadOnlyList<string> Failures { get { lock (_failures) return _failures.ToList(); } }
    /// <summary>The threads it started (for tests that check they are gone after Stop).</summary>
    public IReadOnlyList<Thread> Threads { get { lock (_gate) return _threads.ToList(); } }

    /// <summary>Cancelled when a thread of this topology ends with an unexpected exception (see <see cref="Failures"/>): <see cref="TopologyRunner.Run"/> stops its load on it.</summary>
    public CancellationToken Failed => _failed.Token;

    /// <summary>The first unexpected exception that ended a thread, or null.</summary>
    public Exception? FirstFailure => Volatile.Read(ref _firstFailure);

    /// <summary>
    /// Test hook, called on the serving thread with each per-request event (RequestStarted, Read, ...) and its worker
    /// index: a hook that throws is a request handler that throws, ending that thread the way a bug in it would.
    /// </summary>
    internal Action<TopologyEventKind, int>? RequestHook;

    internal bool Stopping => _stop.IsCancellationRequested;

    /// <summary>
    /// Out of descriptors (EMFILE, or within <see cref="TopologyOptions.FdHeadroom"/>) in a thread that owns a blocking
    /// accept: the policy there is always the pause (no loop to keep serving), a wait that Stop cuts short.
    /// </summary>
    internal void PauseForDescriptors(int worker)
    {
        Event(TopologyEventKind.AcceptEmfile, worker, -(long)Options.EmfilePause.TotalMilliseconds);
        StopToken.WaitHandle.WaitOne(Options.EmfilePause);
    }
    internal CancellationToken StopToken => _stop.Token;
    internal ReserveFd Reserve { get; }
    /// <summary>The descriptors left free for the runtime (<see cref="TopologyOptions.FdHeadroom"/>); set by <see cref="Start"/>.</summary>
    internal FdBudget Fds { get; private set; } = new(0, 0);

    /// <inheritdoc/>
    public void Start()
    {
        lock (_gate)
        {
            if (_state == 2) throw new ObjectDisposedException(Name, $"{Name} was stopped; make a new one to start again.");
            if (_state == 1) throw new InvalidOperationException($"{Name} is already running on {Endpoints.Format(LocalEndPoint)}.");
            _state = 1;
        }
        _started = Stopwatch.GetTimestamp();
        try
        {
            if (Options.EmfilePolicy == EmfilePolicy.ReserveFd) Reserve.Open();
            Fds = new FdBudget(Options.FdHeadroom, LiveConnections);
            StartCore();
        }
        catch
        {
            Stop(DefaultStopTimeout);
            throw;
        }
        LabResources.Track(this, Name);
    }

    /// <summary>Opens the listener(s) with <see cref="Own{T}"/> and starts the threads with <see cref="StartThread"/>.</summary>
    protected abstract void StartCore();

    /// <summary>Wakes every thread so it sees <see cref="Stopping"/> (signal their eventfds).</summary>
    protected abstract void WakeAll();

    /// <inheritdoc/>
    public abstract IReadOnlyList<AcceptQueueReading> AcceptQueues();

    /// <summary>Registers something to close when the topology stops (after its threads ended).</summary>
    protected internal T Own<T>(T resource) where T : IDisposable
    {
        lock (_gate) _owned.Add(resource);
        return resource;
    }

    /// <summary>Counters for a new thread; its index (its row in <see cref="Metrics"/>, and the Worker of its events) follows creation order.</summary>
    internal WorkerCounters NewCounters(string name, WorkerRole role)
    {
        lock (_gate)
        {
            var c = new WorkerCounters(_counters.Count, name, role);
            _counters.Add(c);
            return c;
        }
    }

    /// <summary>Each listener's accept queue; a closed one reads as (0, 0).</summary>
    protected static IReadOnlyList<AcceptQueueReading> ReadQueues(params Listener?[] listeners)
    {
        var list = new List<AcceptQueueReading>(listeners.Length);
        foreach (var l in listeners)
        {
            if (l is null) continue;
            try { list.Add(l.Handle.IsClosed ? new AcceptQueueReading(0, 0) : l.ReadAcceptQueue()); }
            catch (ObjectDisposedException) { list.Add(new AcceptQueueReading(0, 0)); }
        }
        return list;
    }

    /// <summary>Opens a listener on <paramref name="at"/> with this topology's backlog, owned by the topology, and records Listen.</summary>
    protected Listener OpenListener(IPEndPoint at, bool nonBlocking = true, bool reusePort = false)
    {
        var l = Own(Listener.Open(at, Options.Backlog, new ListenerOptions { NonBlocking = nonBlocking, ReusePort = reusePort, Backlog = Options.Backlog }));
        Event(TopologyEventKind.Listen, -1, l.Port);
        return l;
    }

    /// <summary>Starts a background thread named "lab-topo NAME"; an unexpected exception is kept in <see cref="Failures"/>.</summary>
    internal Thread StartThread(string name, Action body)
    {
        var t = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) when (Stopping && e is ObjectDisposedException or ThreadInterruptedException or OperationCanceledException) { }
            catch (Exception e)
            {
                lock (_failures) _failures.Add($"{name}: {e.GetType().Name}: {e.Message}");
                Interlocked.CompareExchange(ref _firstFailure, e, null);
                _failed.Cancel();
            }
        })
        { IsBackground = true, Name = $"lab-topo {name}" };
        lock (_gate) _threads.Add(t);
        t.Start();
        return t;
    }

    internal void Event(TopologyEventKind kind, int worker = -1, long value = 0) => Events.Record(kind, worker, value);

    internal void RequestEvent(TopologyEventKind kind, int worker, long value)
    {
        if (Events.RequestEvents) Events.Record(kind, worker, value);
        RequestHook?.Invoke(kind, worker);
    }

    internal long LiveConnections => Volatile.Read(ref _live);
    internal long ConnectionOpened() => Interlocked.Increment(ref _live);
    internal void ConnectionClosed() => Interlocked.Decrement(ref _live);
    internal void BadRequest() => Interlocked.Increment(ref _badRequests);

    /// <inheritdoc/>
    public TopologyMetrics Metrics
    {
        get
        {
            List<WorkerCounters> list;
            lock (_gate) list = _counters.ToList();
            var up = _started == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_started);
            return new TopologyMetrics(Name, up, list.Select(c => c.Snapshot()).ToList(), LiveConnections, Volatile.Read(ref _badRequests), DispatchMetrics());
        }
    }

    /// <summary>The request-dispatch model's cost; null for the others.</summary>
    internal virtual DispatchCost? DispatchMetrics() => null;

    /// <summary>
    /// Stops every thread and closes every socket. Waits half of <paramref name="timeout"/>, then interrupts threads
    /// still inside a simulated /sleep, then waits the rest. Idempotent: a second call returns the first report.
    /// </summary>
    public StopReport Stop(TimeSpan timeout)
    {
        lock (_gate)
        {
            if (_stopReport is not null) return _stopReport;
            if (_state == 0) { _state = 2; return _stopReport = new StopReport(true, TimeSpan.Zero, [], []); }
            _state = 2;
        }
        var clock = Stopwatch.StartNew();
        _stop.Cancel();
        try { WakeAll(); }
        catch (Exception e) when (e is not OutOfMemoryException) { lock (_failures) _failures.Add($"waking threads to stop: {e.Message}"); }
        var threads = Threads;
        var half = timeout / 2;
        foreach (var t in threads) t.Join(Max(TimeSpan.Zero, half - clock.Elapsed));
        foreach (var t in threads.Where(t => t.IsAlive)) t.Interrupt();
        foreach (var t in threads) t.Join(Max(TimeSpan.Zero, timeout - clock.Elapsed));
        var notStopped = threads.Where(t => t.IsAlive).Select(t => t.Name ?? "thread").ToList();
        List<IDisposable> owned;
        lock (_gate) { owned = _owned.ToList(); _owned.Clear(); }
        owned.Reverse();
        foreach (var o in owned)
        {
            try { o.Dispose(); }
            catch (Exception e) { lock (_failures) _failures.Add($"closing {o}: {e.Message}"); }
        }
        Reserve.Dispose();
        LabResources.Untrack(this);
        lock (_gate) return _stopReport = new StopReport(notStopped.Count == 0, clock.Elapsed, notStopped, Failures);
    }

    static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Stops within <see cref="DefaultStopTimeout"/>. Safe to call twice.</summary>
    public void Dispose()
    {
        Stop(DefaultStopTimeout);
        GC.SuppressFinalize(this);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} on {(Port == 0 ? "(not started)" : Url)}: {(Running ? "running" : Volatile.Read(ref _state) == 0 ? "not started" : "stopped")}";
}
