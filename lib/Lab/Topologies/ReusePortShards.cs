// Imitates: nginx "listen ... reuseport" (and Envoy, HAProxy, Go's SO_REUSEPORT servers): every thread opens its own listening socket on the same port.
// Shows: the kernel spreads connections by a hash of the 4-tuple over one accept queue per socket; a stalled shard's queue still fills, and a closed shard's queue is reset unless net.ipv4.tcp_migrate_req moves it.
using System.Net;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>
/// N shards, each one thread with its own SO_REUSEPORT listening socket (the first binds the address as given,
/// port 0 included; the rest bind the port it got), its own epoll, and the connections it accepted. No state is
/// shared and no thread ever wakes for another's connection. The kernel (net/core/sock_reuseport.c,
/// reuseport_select_sock) picks a socket from the group by the SYN's 4-tuple hash, blind to how busy it is: a
/// shard that stops accepting still gets its share, which waits (and overflows) in its own queue while the other
/// shards idle. Read the queues with <see cref="ShardQueues"/>; stall one with <see cref="PauseShard"/>.
/// </summary>
/// <remarks>
/// Closing a shard's socket (<see cref="CloseShard"/>) removes it from the group; connections already in its
/// accept queue are reset, unless net.ipv4.tcp_migrate_req is 1 (Linux 5.14), when the kernel moves them to
/// another listener of the group (inet_csk_listen_stop → reuseport_migrate_sock). <see cref="MigrateRequests"/>
/// reads the setting; chapters change it in a scope that restores it.
/// </remarks>
public sealed class ReusePortShards : Topology
{
    Listener[] _listeners = [];
    EventLoop[] _shards = [];
    readonly object _control = new();

    /// <summary><see cref="TopologyOptions.Workers"/> shards (default 2), each its own listener, thread and epoll.</summary>
    public ReusePortShards(TopologyOptions? options = null) : base(options) { }

    /// <inheritdoc/>
    public override string Name => nameof(ReusePortShards);

    /// <summary>How many shards (listeners) there are.</summary>
    public int Shards => Options.Workers;

    /// <summary>Whether the kernel migrates a closed listener's queued connections to the rest of its group (/proc/sys/net/ipv4/tcp_migrate_req is 1).</summary>
    public static bool MigrateRequests
    {
        get
        {
            try { return File.ReadAllText("/proc/sys/net/ipv4/tcp_migrate_req").Trim() == "1"; }
            catch (IOException) { return false; } // kernels before 5.14 have no such setting: they always reset
        }
    }

    /// <inheritdoc/>
    protected override void StartCore()
    {
        int n = Options.Workers;
        _listeners = new Listener[n];
        _shards = new EventLoop[n];
        for (int i = 0; i < n; i++)
        {
            // SO_REUSEPORT must be set on every socket before bind, the first included, or the second bind is EADDRINUSE.
            var at = i == 0 ? Endpoint : new IPEndPoint(Endpoint.Address, _listeners[0].Port);
            _listeners[i] = OpenListener(at, reusePort: true);
            if (i == 0) LocalEndPoint = _listeners[0].LocalEndPoint;
        }
        for (int i = 0; i < n; i++)
        {
            _shards[i] = new EventLoop(this, NewCounters($"sh{i}", WorkerRole.Loop));
            _shards[i].WatchListener(_listeners[i]);
        }
        for (int i = 0; i < n; i++) StartThread($"sh{i}", _shards[i].Run);
    }

    /// <inheritdoc/>
    protected override void WakeAll()
    {
        foreach (var s in _shards) s?.Wake.Signal();
    }

    /// <summary>Every shard's accept queue now, by shard (a closed shard reads (0, 0)).</summary>
    public IReadOnlyList<AcceptQueueReading> ShardQueues() => ReadQueues(_listeners);

    /// <inheritdoc/>
    public override IReadOnlyList<AcceptQueueReading> AcceptQueues() => ShardQueues();

    /// <summary>The port every shard listens on.</summary>
    public IReadOnlyList<Listener> Listeners => _listeners;

    /// <summary>
    /// Shard <paramref name="shard"/> stops accepting (its listener leaves its epoll) but stays in the reuseport group:
    /// the kernel still sends it its share, which waits in its accept queue. Returns once the shard's thread has done it
    /// (at most 5 s: a shard inside a slow request answers after it).
    /// </summary>
    public void PauseShard(int shard) => Control(shard, TopologyEventKind.ShardPaused, loop => loop.HoldListener(0));

    /// <summary>Shard <paramref name="shard"/> accepts again, starting with whatever waited in its queue.</summary>
    public void ResumeShard(int shard) => Control(shard, TopologyEventKind.ShardResumed, loop => loop.ResumeListener(0));

    /// <summary>
    /// Closes shard <paramref name="shard"/>'s listening socket (its thread keeps serving the connections it has).
    /// What waited in its queue is reset, or moved to the other shards when <see cref="MigrateRequests"/> is true.
    /// </summary>
    public void CloseShard(int shard) => Control(shard, TopologyEventKind.ShardClosed, loop => loop.CloseListener(0));

    void Control(int shard, TopologyEventKind kind, Action<EventLoop> action)
    {
        if (!Running) throw new InvalidOperationException($"{Name} is not running; Start it first.");
        if ((uint)shard >= (uint)_shards.Length)
            throw new ArgumentOutOfRangeException(nameof(shard), shard, $"There are {_shards.Length} shards: 0 to {_shards.Length - 1}.");
        lock (_control)
        {
            var loop = _shards[shard];
            loop.Invoke(() => action(loop));
            Event(kind, loop.Index, shard);
        }
    }
}
