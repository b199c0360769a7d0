// Imitates: the notes' "1 listener, 3 acceptors, 5 readers": one thread calls listen, N threads wait in a blocking accept on that one socket, M threads read in their own epoll loops.
// Shows: listen, accept and read are three system calls that any thread holding the fd may make; the events name the thread that made each one.
using System.Runtime.ExceptionServices;
using Lab.Sockets;
using static Lab.Interop.errno;

namespace Lab.Topologies;

/// <summary>
/// The three roles of the notes on threads of their own. A listener thread opens the listening socket (socket, bind,
/// listen). Then, by <see cref="Acceptors"/>:
/// <list type="bullet">
/// <item>N ≥ 1: N acceptor threads wait in a blocking accept4 on that one socket (the listener's fd is shared by every
/// thread of the process) and hand each connection, round-robin, to one of <see cref="Readers"/> reader threads; the
/// listener thread, its one call made, waits for the server to stop.</item>
/// <item>0: the listener thread accepts too, in its own epoll loop (non-blocking socket); with readers it hands each
/// connection on (memcached's shape), without readers it serves them itself (Node's: one thread, all three roles).</item>
/// </list>
/// Each reader runs its own epoll loop and serves its connections to the end. The Listen, Accepted and Read events
/// carry the Linux thread id of the thread that made the call.
/// </summary>
/// <example>
/// <code>
/// using var server = new RoleSplit(acceptors: 3, readers: 5);
/// server.Start();
/// server.ListenerThreadId    // the tid that called listen(2)
/// </code>
/// </example>
public sealed class RoleSplit : Topology
{
    /// <summary>The most acceptor or reader threads.</summary>
    public const int MaxThreadsPerRole = 64;

    Listener? _listener;
    EventLoop? _listenerLoop;
    EventLoop[] _readers = [];
    int _next;
    int _listenerTid;

    /// <summary>A listener thread, <paramref name="acceptors"/> acceptor threads and <paramref name="readers"/> reader threads.</summary>
    /// <param name="acceptors">Threads in blocking accept, 0 to 64. 0: the listener thread accepts in its epoll loop.</param>
    /// <param name="readers">Threads that read and answer connections, 0 to 64. 0 (only with 0 acceptors): the listener thread reads too.</param>
    /// <param name="options">Shared options (address, backlog...); <see cref="TopologyOptions.Workers"/> is ignored. Null for the defaults.</param>
    public RoleSplit(int acceptors, int readers, TopologyOptions? options = null) : base(options)
    {
        if (acceptors is < 0 or > MaxThreadsPerRole)
            throw new ArgumentOutOfRangeException(nameof(acceptors), acceptors, $"acceptors = {acceptors} is outside 0..{MaxThreadsPerRole} (0: the listener thread accepts).");
        if (readers is < 0 or > MaxThreadsPerRole)
            throw new ArgumentOutOfRangeException(nameof(readers), readers, $"readers = {readers} is outside 0..{MaxThreadsPerRole} (0: whoever accepts reads).");
        if (acceptors > 0 && readers == 0)
            throw new ArgumentException($"acceptors = {acceptors} with readers = 0: a thread asleep in a blocking accept4 cannot also wait for its connections' data. " +
                                        "Give readers ≥ 1, or acceptors = 0 to let the listener thread accept and read in one epoll loop.", nameof(readers));
        Acceptors = acceptors;
        Readers = readers;
    }

    /// <summary>One thread that listens, accepts and reads (Node's arrangement).</summary>
    public static RoleSplit OneThread(TopologyOptions? options = null) => new(0, 0, options);

    /// <summary>Threads in blocking accept (0: the listener thread accepts).</summary>
    public int Acceptors { get; }
    /// <summary>Reader threads (0: the listener thread reads).</summary>
    public int Readers { get; }
    /// <inheritdoc/>
    public override EmfilePolicy EmfileHandling => Acceptors > 0 ? EmfilePolicy.Pause : base.EmfileHandling;

    /// <summary>The Linux thread id of the thread that called listen(2) (0 before <see cref="Topology.Start"/>).</summary>
    public int ListenerThreadId => Volatile.Read(ref _listenerTid);

    /// <inheritdoc/>
    public override string Name => Acceptors == 0 && Readers == 0 ? "RoleSplit 1/1/1 on one thread"
        : $"RoleSplit 1/{Math.Max(1, Acceptors)}/{Readers}{(Acceptors == 0 ? " (listener accepts)" : "")}";

    /// <inheritdoc/>
    protected override void StartCore()
    {
        _readers = new EventLoop[Readers];
        for (int i = 0; i < Readers; i++)
        {
            _readers[i] = new EventLoop(this, NewCounters($"rd{i}", WorkerRole.Worker));
            StartThread($"rd{i}", _readers[i].Run);
        }
        // listen(2) is made on the listener thread itself, so its Listen event carries that thread's id; Start waits for it.
        var ready = new ManualResetEventSlim();
        Exception? failure = null;
        StartThread("listen", () =>
        {
            Volatile.Write(ref _listenerTid, ThreadIds.Current);
            try
            {
                var l = OpenListener(Endpoint, nonBlocking: Acceptors == 0);
                _listener = l;
                LocalEndPoint = l.LocalEndPoint;
                if (Acceptors == 0)
                {
                    _listenerLoop = Readers == 0
                        ? new EventLoop(this, NewCounters("listen", WorkerRole.Loop))
                        : new HandingLoop(this, NewCounters("listen", WorkerRole.Dispatcher));
                    _listenerLoop.WatchListener(l);
                }
            }
            catch (Exception e) { failure = e; }
            finally { ready.Set(); }
            if (failure is not null) return;
            if (_listenerLoop is not null) _listenerLoop.Run();
            else StopToken.WaitHandle.WaitOne(); // its one call is made; it stays until Stop so /proc/self/task still shows it
        });
        if (!ready.Wait(TimeSpan.FromSeconds(10)))
            throw new TimeoutException($"{Name}: the listener thread did not open its socket within 10 s (is the machine overloaded?).");
        if (failure is not null) ExceptionDispatchInfo.Throw(failure);
        for (int i = 0; i < Acceptors; i++)
        {
            var c = NewCounters($"acc{i}", WorkerRole.Acceptor);
            StartThread($"acc{i}", () => AcceptLoop(c));
        }
    }

    /// <summary>
    /// One acceptor: a blocking accept4 (the kernel parks the thread in inet_csk_accept, and acceptors are woken first
    /// come first served; Stop cancels <see cref="Listener.Accept"/>'s token, which wakes it), then a hand-off. EMFILE pauses this thread for
    /// <see cref="TopologyOptions.EmfilePause"/>: an acceptor owns its thread, so there is no loop to keep serving.
    /// </summary>
    void AcceptLoop(WorkerCounters c)
    {
        c.Begin();
        var listener = _listener!;
        Action<Connection> handOff = conn => HandOff(conn, c.Index);
        try
        {
            while (!Stopping)
            {
                if (Fds.Low(LiveConnections)) { PauseForDescriptors(c.Index); continue; }
                c.Sleeping();
                AcceptResult r;
                try { r = listener.Accept(null, StopToken, Serving.Flags); }
                catch (SyscallException e) when (e.Errno is EMFILE or ENFILE)
                {
                    c.Awake(false);
                    PauseForDescriptors(c.Index);
                    continue;
                }
                c.Awake(r is AcceptResult.Accepted);
                if (r is AcceptResult.Accepted a) Serving.Accepted(this, a.Connection, c, c.Index, handOff);
                else if (r is AcceptResult.Aborted ab) Event(TopologyEventKind.AcceptAborted, c.Index, ab.Errno);
            }
        }
        finally
        {
            c.End();
            Event(TopologyEventKind.ThreadStopped, c.Index, c.Index);
        }
    }

    /// <summary>Gives <paramref name="conn"/> to the next reader in turn (a shared counter: acceptors take turns together).</summary>
    void HandOff(Connection conn, int from)
    {
        var readers = _readers;
        int r = (int)((uint)(Interlocked.Increment(ref _next) - 1) % (uint)readers.Length);
        Event(TopologyEventKind.Handoff, from, readers[r].Index);
        try { readers[r].Hand(conn); }
        catch (ObjectDisposedException) { conn.Dispose(); } // the reader's eventfd is closed: stopping
    }

    /// <inheritdoc/>
    protected override void WakeAll()
    {
        _listenerLoop?.Wake.Signal();
        foreach (var r in _readers) r?.Wake.Signal();
    }

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ReadQueues(_listener);

    /// <summary>The listener thread's loop when it accepts for reader threads: every connection goes on, none is served here.</summary>
    sealed class HandingLoop(RoleSplit owner, WorkerCounters counters) : EventLoop(owner, counters)
    {
        protected override void OnAccepted(Connection c) => owner.HandOff(c, Index);
    }
}
