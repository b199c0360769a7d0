using System.Diagnostics;
using Lab.Sockets;
using Lab.Tests.Sockets;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>The one property each model's chapter shows, checked against the kernel.</summary>
[Collection(nameof(TimingCollection))]
public class TopologyBehaviourTests
{
    static void OneRequestEach(Topology t, int connections, Action? beforeEach = null)
    {
        for (int i = 0; i < connections; i++)
        {
            beforeEach?.Invoke();
            using var c = new TestClient(t.LocalEndPoint);
            Assert.Equal(200, c.Get(keepAlive: false).Status);
            Assert.True(c.SeesClose());
        }
    }

    static IReadOnlyList<WorkerMetrics> Role(Topology t, WorkerRole role) => t.Metrics.Workers.Where(w => w.Role == role).ToList();

    [Fact]
    public void DispatcherWorkersSpreadsConnectionsRoundRobin()
    {
        using var t = Started(o => new DispatcherWorkers(o), Small(3));
        OneRequestEach(t, 20);
        Assert.True(Eventually.Holds(() => Role(t, WorkerRole.Worker).Sum(w => w.RequestsServed) == 20));
        var served = Role(t, WorkerRole.Worker).Select(w => w.ConnectionsServed).ToList();
        Assert.Equal(20, served.Sum());
        Assert.InRange(served.Max() - served.Min(), 0, 1);
        Assert.Equal(20, t.Events.Count(TopologyEventKind.Handoff));
        var dispatcher = Assert.Single(Role(t, WorkerRole.Dispatcher));
        Assert.Equal(20, dispatcher.ConnectionsAccepted);
        Assert.Equal(0, dispatcher.RequestsServed);
    }

    /// <summary>
    /// Sends a slow request, waits until its work began, then times a fast request on another connection (on this
    /// thread: no thread-pool scheduling in the measurement). Also says whether the slow response had already
    /// arrived when the fast one was read (bytes in its receive queue).
    /// </summary>
    static (TimeSpan Fast, bool SlowAnsweredFirst) SlowThenFast(Topology t, int slowMs)
    {
        using var slow = new TestClient(t.LocalEndPoint);
        Assert.True(Eventually.Holds(() => t.Metrics.ConnectionsAccepted == 1));
        using var fast = new TestClient(t.LocalEndPoint);
        Assert.True(Eventually.Holds(() => t.Metrics.ConnectionsAccepted == 2));
        slow.Send($"GET /sleep?ms={slowMs} HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.RequestStarted) == 1, TimeSpan.FromSeconds(10)));
        var clock = Stopwatch.StartNew();
        Assert.Equal(200, fast.Get().Status);
        var elapsed = clock.Elapsed;
        bool slowFirst = slow.Conn.InQueue > 0;
        Assert.Equal(200, slow.ReadResponse(TimeSpan.FromSeconds(20)).Status);
        return (elapsed, slowFirst);
    }

    [Fact]
    public void SingleThreadLoopLetsASlowRequestDelayAFastOne()
    {
        using var t = Started(o => new SingleThreadLoop(o));
        var (fast, slowFirst) = SlowThenFast(t, 400);
        Assert.True(fast >= TimeSpan.FromMilliseconds(150), $"fast request took {fast.TotalMilliseconds:0} ms");
        Assert.True(slowFirst, "one thread: the slow response is written before the fast one");
    }

    [Fact]
    public void DispatcherWorkersServesAFastRequestBesideASlowOneOnAnotherWorker()
    {
        using var t = Started(o => new DispatcherWorkers(o), Small(2));
        var (fast, slowFirst) = SlowThenFast(t, 1500);
        var w = Role(t, WorkerRole.Worker);
        Assert.Equal([1L, 1L], w.Select(x => x.ConnectionsServed)); // slow on w0, fast on w1
        Assert.False(slowFirst, $"fast request took {fast.TotalMilliseconds:0} ms");
        Assert.True(fast < TimeSpan.FromMilliseconds(1000), $"fast request took {fast.TotalMilliseconds:0} ms");
    }

    [Fact]
    public void RequestDispatchServesAFastRequestBesideASlowOne()
    {
        using var t = Started(o => new RequestDispatch(o), Small(2));
        var (fast, slowFirst) = SlowThenFast(t, 1500);
        Assert.False(slowFirst, $"fast request took {fast.TotalMilliseconds:0} ms");
        Assert.True(fast < TimeSpan.FromMilliseconds(1000), $"fast request took {fast.TotalMilliseconds:0} ms");
        var m = t.Metrics;
        Assert.Equal(2, m.Dispatch!.Dispatched);
        Assert.Equal(2, m.RequestsServed);
        Assert.True(m.Dispatch.Mean > TimeSpan.Zero);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void RequestDispatchWithPollingWorkersLosesNoRequest(int workers)
    {
        // Workers that poll for 20 ms before sleeping: requests come both while a worker polls (the dispatcher hands over
        // without a system call) and after it fell asleep (the 60 ms gaps), so both sides of the sleep flag are crossed.
        using var t = Started(o => new RequestDispatch(o), Small(workers) with { WorkerSpin = TimeSpan.FromMilliseconds(20) });
        for (int round = 0; round < 4; round++)
        {
            Parallel(4, _ =>
            {
                using var c = new TestClient(t.LocalEndPoint);
                for (int i = 0; i < 25; i++) Assert.Equal(200, c.Get().Status);
            });
            Thread.Sleep(60);
        }
        var d = t.Metrics.Dispatch!;
        Assert.Equal(400, d.Dispatched);
        Assert.Equal(400, t.Metrics.RequestsServed);
        // A lost wake-up (the flag and Session crossing the wrong way) would leave a request until the worker's 500 ms
        // timed wait ends: no hand-off may take that long.
        Assert.True(d.Max < TimeSpan.FromMilliseconds(450), $"a hand-off took {d.Max.TotalMilliseconds:0} ms: {d}");
    }

    [Fact]
    public void RequestDispatchWorkersStopPollingOnceTheDispatcherWaits()
    {
        // A 100 ms poll, and then nothing to do: the dispatcher blocks in epoll_wait, and the workers must notice and
        // sleep instead of spinning out their 100 ms (no request can come before a packet wakes the dispatcher).
        using var t = Started(o => new RequestDispatch(o), Small(2) with { WorkerSpin = TimeSpan.FromMilliseconds(100) });
        using (var c = new TestClient(t.LocalEndPoint))
            for (int i = 0; i < 20; i++) Assert.Equal(200, c.Get().Status);
        var tids = Role(t, WorkerRole.Worker).Select(w => w.ThreadId).ToList();
        var before = tids.Select(OnCpuMs).ToList();
        Thread.Sleep(400);
        var spent = tids.Select((tid, i) => OnCpuMs(tid) - before[i]).ToList();
        // Spinning out the poll would put up to 100 ms on a worker's clock here; sleeping puts about nothing.
        Assert.True(spent.All(ms => ms < 30), $"workers' CPU time in 400 ms of idleness: {string.Join(", ", spent.Select(ms => $"{ms:0.0} ms"))}");
        Assert.True(Eventually.Holds(() => tids.All(tid => Lab.Observe.ThreadLook.TryOf(tid) is { State: 'S', SyscallName: "futex" })),
            "an idle worker should sleep in futex");
    }

    static double OnCpuMs(int tid) => double.Parse(File.ReadAllText($"/proc/self/task/{tid}/schedstat").Split(' ')[0]) / 1e6;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void RequestDispatchKeepsTheFirstCpuForItsDispatcher(bool dispatcherCore)
    {
        var allowed = CpuAffinity.Of();
        using var t = (RequestDispatch)Started(o => new RequestDispatch(o), Small(2) with { DispatcherCore = dispatcherCore });
        // A thread's id is published after it confined itself, so once all three are there, their sets are final.
        Assert.True(Eventually.Holds(() => t.Metrics.Workers.All(w => w.ThreadId != 0)));
        var disp = CpuAffinity.Of(Assert.Single(Role(t, WorkerRole.Dispatcher)).ThreadId);
        var workers = Role(t, WorkerRole.Worker).Select(w => CpuAffinity.Of(w.ThreadId)).ToList();
        if (dispatcherCore && allowed.Length >= 2)
        {
            Assert.Equal([allowed[0]], disp);
            Assert.All(workers, w => Assert.Equal(allowed[1..], w));
            Assert.Equal([allowed[0]], t.DispatcherCpus);
            Assert.Equal(allowed[1..], t.WorkerCpus);
        }
        else
        {
            Assert.Equal(allowed, disp);
            Assert.All(workers, w => Assert.Equal(allowed, w));
            Assert.Empty(t.DispatcherCpus);
        }
        Parallel(4, _ =>
        {
            using var c = new TestClient(t.LocalEndPoint);
            for (int i = 0; i < 50; i++) Assert.Equal(200, c.Get().Status);
        });
        // Only the topology's own threads are narrowed: not the thread that started it, nor any other. (A Linux thread
        // inherits its creator's set, but a thread .NET starts did not here: one started from disp had the full set.)
        // This collection runs alone, so every other thread of the process must still have the full set.
        var own = t.Metrics.Workers.Select(w => w.ThreadId).ToHashSet();
        var narrowed = Directory.GetDirectories("/proc/self/task")
            .Select(dir => int.Parse(Path.GetFileName(dir)))
            .Where(tid => !own.Contains(tid))
            .Select(tid => (tid, name: TryRead($"/proc/self/task/{tid}/comm"), cpus: TryAffinity(tid)))
            .Where(th => th.cpus is not null && !th.cpus.SequenceEqual(allowed))
            .ToList();
        Assert.True(narrowed.Count == 0, string.Join("; ", narrowed.Select(th => $"{th.tid} {th.name}: {string.Join(",", th.cpus!)}")));
    }

    static string? TryRead(string path)
    {
        try { return File.ReadAllText(path).Trim(); } catch (IOException) { return null; }
    }

    static int[]? TryAffinity(int tid)
    {
        try { return CpuAffinity.Of(tid); } catch (SyscallException) { return null; } // the thread ended meanwhile
    }

    [Fact]
    public void WorkerSpinOutOfRangeIsNamed()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new TopologyOptions { WorkerSpin = TimeSpan.FromSeconds(1) }.Validate());
        Assert.Contains("WorkerSpin", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopologyOptions { WorkerSpin = TimeSpan.FromMilliseconds(-1) }.Validate());
    }

    [Fact]
    public void RequestDispatchQueuesRequestsWhenEveryWorkerIsBusy()
    {
        using var t = Started(o => new RequestDispatch(o), Small(1));
        Parallel(3, _ =>
        {
            using var c = new TestClient(t.LocalEndPoint);
            Assert.Equal(200, c.Get("/sleep?ms=100").Status);
        });
        var d = t.Metrics.Dispatch!;
        Assert.Equal(3, d.Dispatched);
        Assert.True(d.Queued >= 1, d.ToString());
        Assert.True(d.Max >= TimeSpan.FromMilliseconds(50), d.ToString());
        Assert.True(d.MeanQueueWait > TimeSpan.Zero && d.MeanHandoff >= TimeSpan.Zero && d.MeanQueueWait <= d.Mean, d.ToString());
        Assert.Equal(3, t.Events.Count(TopologyEventKind.Dispatch));
    }

    [Fact]
    public void BlockingAcceptHandsSequentialConnectionsRoundRobin()
    {
        using var t = Started(o => new SharedSocketAcceptors(o, AcceptorVariant.BlockingAccept), Small(3));
        // Before each connection, wait until all three acceptors sleep inside accept4 (their wait channel), so the
        // kernel's queue of waiters holds all three. On a busy machine an acceptor can be preempted between handing
        // a connection off and calling accept4 again; then a later thread queues ahead of it and the turn moves on.
        void AllWaiting() => Assert.True(Eventually.Holds(() => Role(t, WorkerRole.Acceptor).All(a => a.ThreadId != 0 && WaitChannel(a.ThreadId) == "inet_csk_accept")),
            string.Join(", ", Role(t, WorkerRole.Acceptor).Select(a => $"{a.ThreadId}: {WaitChannel(a.ThreadId)}")));
        OneRequestEach(t, 12, AllWaiting);
        Assert.Equal([4L, 4L, 4L], Role(t, WorkerRole.Acceptor).Select(a => a.ConnectionsAccepted));
        Assert.Equal(12, Role(t, WorkerRole.Worker).Sum(w => w.RequestsServed));
    }

    static string WaitChannel(int tid)
    {
        try { return File.ReadAllText($"/proc/self/task/{tid}/wchan").Trim(); }
        catch (IOException) { return "?"; }
    }

    /// <summary>Wake-ups for nothing over 200 sequential connections to 4 threads: (seen as EAGAIN, hidden inside epoll_wait).</summary>
    static (long Empty, long Silent, string Table) WastedWakeUps(AcceptorVariant variant)
    {
        using var t = Started(o => new SharedSocketAcceptors(o, variant), Small(4));
        Assert.True(Eventually.Holds(() => t.Metrics.Workers.All(w => w.ThreadId != 0)));
        var before = t.Metrics;
        OneRequestEach(t, 200);
        var m = t.Metrics;
        Assert.Equal(200, m.ConnectionsAccepted);
        Assert.Equal(m.EmptyWakeUps, t.Events.Count(TopologyEventKind.AcceptWouldBlock));
        return (m.EmptyWakeUps, m.SilentWakeUps - before.SilentWakeUps, m.ToString());
    }

    [Fact]
    public void EpollPerThreadWakesThreadsForNothingAndExclusiveWakesFewer()
    {
        var herd = WastedWakeUps(AcceptorVariant.EpollPerThread);
        var exclusive = WastedWakeUps(AcceptorVariant.EpollExclusive);
        long wastedHerd = herd.Empty + herd.Silent, wastedExclusive = exclusive.Empty + exclusive.Silent;
        Assert.True(wastedHerd > 0, "plain epoll on a shared listener wakes threads that find nothing\n" + herd.Table);
        Assert.True(wastedExclusive < wastedHerd, $"EPOLLEXCLUSIVE {exclusive} vs plain {herd}");
    }

    [Fact]
    public void AcceptMutexLetsOnlyTheHolderAccept()
    {
        using var t = Started(o => new SharedSocketAcceptors(o, AcceptorVariant.AcceptMutex, TimeSpan.FromMilliseconds(20)), Small(3));
        OneRequestEach(t, 50);
        var m = t.Metrics;
        Assert.Equal(50, m.ConnectionsAccepted);
        Assert.True(m.EmptyWakeUps < 50, m.ToString());
    }

    [Fact]
    public void ReusePortShardsEachGetAShareAndAPausedShardsQueueFills()
    {
        using var t = Started(o => new ReusePortShards(o), Small(4) with { Backlog = 64 });
        var shards = (ReusePortShards)t;
        Assert.Equal(4, shards.ShardQueues().Count);
        Assert.All(shards.Listeners, l => Assert.Equal(t.Port, l.Port));
        Parallel(4, _ =>
        {
            for (int i = 0; i < 100; i++)
            {
                using var c = new TestClient(t.LocalEndPoint);
                Assert.Equal(200, c.Get(keepAlive: false).Status);
            }
        });
        var accepted = t.Metrics.Workers.Select(w => w.ConnectionsAccepted).ToList();
        Assert.Equal(400, accepted.Sum());
        Assert.All(accepted, a => Assert.True(a > 0, string.Join(", ", accepted)));

        shards.PauseShard(0);
        long before0 = t.Metrics.Workers[0].ConnectionsAccepted;
        long beforeOthers = t.Metrics.Workers.Skip(1).Sum(w => w.ConnectionsAccepted);
        using var clients = Clients.Open(t.LocalEndPoint, 100);
        Assert.True(Eventually.Holds(() => clients.CountIn(TcpState.Established) == 100, TimeSpan.FromSeconds(10)));
        AcceptQueueReading q0 = shards.ShardQueues()[0];
        Assert.True(Eventually.Holds(() =>
        {
            q0 = shards.ShardQueues()[0];
            return t.Metrics.Workers.Skip(1).Sum(w => w.ConnectionsAccepted) - beforeOthers + q0.Length == 100;
        }, TimeSpan.FromSeconds(10)), $"queue 0 {q0}, others accepted {t.Metrics.Workers.Skip(1).Sum(w => w.ConnectionsAccepted) - beforeOthers}");
        Assert.InRange(q0.Length, 1, q0.Limit + 1);
        Assert.Equal(before0, t.Metrics.Workers[0].ConnectionsAccepted);
        Assert.All(shards.ShardQueues().Skip(1), q => Assert.Equal(0, q.Length));

        shards.ResumeShard(0);
        Assert.True(Eventually.Holds(() => shards.ShardQueues()[0].Length == 0, TimeSpan.FromSeconds(10)));
        Assert.Equal(before0 + q0.Length, t.Metrics.Workers[0].ConnectionsAccepted);
        Assert.Equal(1, t.Events.Count(TopologyEventKind.ShardPaused));
    }

    [Fact]
    public void ClosingAShardResetsItsQueueOrMigratesIt()
    {
        using var t = Started(o => new ReusePortShards(o), Small(2));
        var shards = (ReusePortShards)t;
        shards.PauseShard(1);
        using var clients = Clients.Open(t.LocalEndPoint, 40);
        Assert.True(Eventually.Holds(() => clients.CountIn(TcpState.Established) == 40, TimeSpan.FromSeconds(10)));
        Assert.True(Eventually.Holds(() => t.Metrics.Workers[0].ConnectionsAccepted + shards.ShardQueues()[1].Length == 40));
        int queued = shards.ShardQueues()[1].Length;
        Assert.True(queued > 0);
        long acceptedBefore = t.Metrics.Workers[0].ConnectionsAccepted;
        shards.CloseShard(1);
        Assert.Equal(new AcceptQueueReading(0, 0), shards.ShardQueues()[1]);
        if (ReusePortShards.MigrateRequests)
            Assert.True(Eventually.Holds(() => t.Metrics.Workers[0].ConnectionsAccepted == acceptedBefore + queued), "migrated to shard 0");
        else
        {
            Assert.Equal(acceptedBefore, t.Metrics.Workers[0].ConnectionsAccepted);
            Assert.True(Eventually.Holds(() => clients.CountIn(TcpState.Close) >= queued), "the queued connections were reset");
        }
        using var c = new TestClient(t.LocalEndPoint); // the port still answers through shard 0
        Assert.Equal(200, c.Get().Status);
    }

    [Fact]
    public void ShardControlsCheckTheirArguments()
    {
        using var t = Started(o => new ReusePortShards(o), Small(2));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ((ReusePortShards)t).PauseShard(2));
        Assert.Contains("0 to 1", e.Message);
    }

    [Fact]
    public void MaxConnectionsClosesTheExtraOnes()
    {
        using var t = Started(o => new SingleThreadLoop(o), new TopologyOptions { MaxConnections = 2 });
        using var a = new TestClient(t.LocalEndPoint);
        using var b = new TestClient(t.LocalEndPoint);
        Assert.Equal(200, a.Get().Status);
        Assert.Equal(200, b.Get().Status);
        using var c = new TestClient(t.LocalEndPoint);
        Assert.True(c.SeesClose());
        Assert.Equal(1, t.Events.Count(TopologyEventKind.ConnectionRejected));
    }

    [Fact]
    public void EventsCarryThreadIdsAndCanBeTurnedOffPerRequest()
    {
        using (var t = Started(o => new DispatcherWorkers(o)))
        {
            using var c = new TestClient(t.LocalEndPoint);
            c.Get();
            Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.RequestServed) == 1));
            var accepted = Assert.Single(t.Events.Of(TopologyEventKind.Accepted));
            Assert.Equal(t.Metrics.Workers[0].ThreadId, accepted.ThreadId);
            var served = Assert.Single(t.Events.Of(TopologyEventKind.RequestServed));
            Assert.Equal(t.Metrics.Workers[1].ThreadId, served.ThreadId);
            Assert.True(served.At > accepted.At);
        }
        using (var t = Started(o => new DispatcherWorkers(o), new TopologyOptions { RequestEvents = false }))
        {
            using var c = new TestClient(t.LocalEndPoint);
            c.Get(); c.Get();
            Assert.True(Eventually.Holds(() => t.Metrics.RequestsServed == 2));
            Assert.Equal(0, t.Events.Count(TopologyEventKind.RequestServed));
            Assert.Equal(1, t.Events.Count(TopologyEventKind.Accepted));
        }
    }
}
