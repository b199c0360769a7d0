using Lab.Sockets;
using Lab.Tests.Sockets;
using Lab.Topologies;
using static Lab.Tests.Topologies.TopologyKit;

namespace Lab.Tests.Topologies;

/// <summary>The same checks against every topology and variant (dotnet/runtime's Accept&lt;T&gt; pattern, as a theory over the catalog).</summary>
public class TopologyContract
{
    public static TheoryData<string> All => Labels();

    [Theory]
    [MemberData(nameof(All))]
    public void ServesAThousandKeepAliveRequests(string label)
    {
        using var t = Started(Factory(label));
        Parallel(4, _ =>
        {
            using var c = new TestClient(t.LocalEndPoint);
            for (int i = 0; i < 250; i++)
            {
                var (status, ka, body) = c.Get();
                Assert.Equal(200, status);
                Assert.True(ka);
                Assert.Equal(TestClient.OkBody, body);
            }
        });
        var report = t.Stop(TimeSpan.FromSeconds(10));
        Assert.True(report.Stopped, report.ToString());
        Assert.Empty(t.Failures);
        Assert.Equal(1000, t.Metrics.RequestsServed);
        Assert.Equal(4, t.Metrics.ConnectionsAccepted);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void ServesAThousandRequestsOnNewConnections(string label)
    {
        using var t = Started(Factory(label));
        Parallel(4, _ =>
        {
            for (int i = 0; i < 250; i++)
            {
                using var c = new TestClient(t.LocalEndPoint);
                var (status, ka, body) = c.Get(keepAlive: false);
                Assert.Equal(200, status);
                Assert.False(ka);
                Assert.Equal(TestClient.OkBody, body);
                Assert.True(c.SeesClose(), "the server closes after Connection: close");
            }
        });
        Assert.True(t.Stop(TimeSpan.FromSeconds(10)).Stopped);
        Assert.Empty(t.Failures);
        var m = t.Metrics;
        Assert.Equal(1000, m.RequestsServed);
        Assert.Equal(1000, m.ConnectionsAccepted);
        Assert.Equal(1000, t.Events.Count(TopologyEventKind.Closed));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void HandlesPipeliningPartialReadsBadRequestsAndResets(string label)
    {
        using var t = Started(Factory(label));
        using (var c = new TestClient(t.LocalEndPoint))
        {
            // Three requests in one segment: three responses, in order.
            c.Send("GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /work?ms=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n");
            for (int i = 0; i < 3; i++) Assert.Equal(200, c.ReadResponse().Status);
            // One request in three pieces.
            c.Send("GET / HT");
            c.Send("TP/1.1\r\nHost");
            c.Send(": t\r\n\r\n");
            Assert.Equal(TestClient.OkBody, c.ReadResponse().Body);
        }
        using (var c = new TestClient(t.LocalEndPoint))
        {
            c.Send("BREW /pot HTTP/1.1\r\n\r\n");
            Assert.Equal(400, c.ReadResponse().Status);
            Assert.True(c.SeesClose());
        }
        using (var c = new TestClient(t.LocalEndPoint))
        {
            Assert.Equal(200, c.Get().Status);
            c.Send("GET / HTTP/1.1\r\n"); // half a request, then RST
            c.Conn.Reset();
        }
        using (var c = new TestClient(t.LocalEndPoint))
        {
            Assert.Equal(200, c.Get().Status);
            c.Conn.Shutdown(ShutdownHow.Write); // FIN: the server sees end of stream
            Assert.True(c.SeesClose());
        }
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.Reset) + t.Events.Count(TopologyEventKind.ReaderFin) >= 2, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, t.Events.Count(TopologyEventKind.BadRequest));
        Assert.True(Eventually.Holds(() => t.Metrics.LiveConnections == 0, TimeSpan.FromSeconds(10)), $"live: {t.Metrics.LiveConnections}");
        Assert.Empty(t.Failures);
    }

    [Theory]
    [MemberData(nameof(All))]
    public void StopIsIdempotentAndBounded(string label)
    {
        var t = Factory(label)(Small());
        Assert.Empty(t.Stop(TimeSpan.FromSeconds(1)).NotStopped); // never started: nothing to stop
        Assert.Throws<ObjectDisposedException>(() => t.Start());
        t.Dispose();

        var u = Started(Factory(label));
        using var idle = new TestClient(u.LocalEndPoint); // an open keep-alive connection at stop
        Assert.Equal(200, idle.Get().Status);
        // The topology's listening sockets, by inode: after Stop none may be left. (Not "a connect is refused": tests
        // running beside this one may be given the freed port, and a connect to a free ephemeral port can even
        // connect to itself.)
        var listening = Lab.Observe.SocketTable.Listeners().Where(r => r.Local.Port == u.LocalEndPoint.Port).Select(r => r.Inode).ToHashSet();
        Assert.NotEmpty(listening);
        var first = u.Stop(TimeSpan.FromSeconds(10));
        Assert.True(first.Stopped, first.ToString());
        Assert.Same(first, u.Stop(TimeSpan.FromSeconds(10)));
        u.Dispose(); u.Dispose();
        Assert.All(u.Threads, th => Assert.False(th.IsAlive));
        Assert.True(idle.SeesClose(), "stopping closes open connections");
        // Stop closed the listener's descriptor, but the socket lives while any process holds a copy of it: a child that
        // another test is starting holds every descriptor of this process from fork to exec (close-on-exec acts at exec).
        // R1 on a fresh clone read the closed listener still listening once. A leak stays; that copy goes within moments.
        List<Lab.Observe.SocketRow> left = [];
        Assert.True(Eventually.Holds(() => (left = Lab.Observe.SocketTable.Listeners().Where(r => listening.Contains(r.Inode)).ToList()).Count == 0, TimeSpan.FromSeconds(5)),
            "still listening 5 s after Stop: " + string.Join(", ", left));
    }

    [Theory]
    [MemberData(nameof(All))]
    public void StopInterruptsASlowRequest(string label)
    {
        using var t = Started(Factory(label));
        using var c = new TestClient(t.LocalEndPoint);
        c.Send("GET /sleep?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n");
        Assert.True(Eventually.Holds(() => t.Events.Count(TopologyEventKind.RequestStarted) == 1, TimeSpan.FromSeconds(10)));
        var report = t.Stop(TimeSpan.FromSeconds(2));
        Assert.True(report.Stopped, report.ToString());
        Assert.True(report.Took < TimeSpan.FromSeconds(5));
    }
}

/// <summary>Fd and thread accounting: runs alone (the process's fd count is shared by every test).</summary>
[Collection(nameof(Lab.Tests.Sockets.ProcessWide))]
public class TopologyLeakTests
{
    public static TheoryData<string> All => Labels();

    [Theory]
    [MemberData(nameof(All))]
    public void StoppingLeavesNoFdOrThreadBehind(string label)
    {
        GC.Collect(); GC.WaitForPendingFinalizers();
        int baseline = OpenFds();
        int baseTasks = LabTopoTasks();
        var t = Started(Factory(label), Small(3));
        var threads = t.Threads;
        Assert.NotEmpty(threads);
        Assert.All(threads, th => Assert.StartsWith("lab-topo ", th.Name));
        var clients = Enumerable.Range(0, 6).Select(_ => new TestClient(t.LocalEndPoint)).ToList();
        foreach (var c in clients) Assert.Equal(200, c.Get().Status);
        using (var half = new TestClient(t.LocalEndPoint)) half.Send("GET / HTTP/1.1\r\n");
        Assert.True(OpenFds() > baseline);
        t.Dispose();
        t.Dispose();
        foreach (var c in clients) c.Dispose();
        Assert.All(threads, th => Assert.False(th.IsAlive, $"{th.Name} still running"));
        Assert.True(Eventually.Holds(() => OpenFds() <= baseline + 2, TimeSpan.FromSeconds(10)), $"fds: {OpenFds()} vs baseline {baseline}");
        Assert.True(Eventually.Holds(() => LabTopoTasks() <= baseTasks, TimeSpan.FromSeconds(10)), $"lab-topo tasks: {LabTopoTasks()} vs {baseTasks}");
    }

    /// <summary>Threads of this process whose name (comm, 15 characters) starts with "lab-topo".</summary>
    static int LabTopoTasks() => Directory.GetDirectories("/proc/self/task").Count(d =>
    {
        try { return File.ReadAllText(Path.Combine(d, "comm")).StartsWith("lab-topo"); }
        catch (IOException) { return false; } // the thread ended while we looked
    });

    [Fact]
    public void BadInputIsRefusedClearlyAndLeaksNothing()
    {
        GC.Collect(); GC.WaitForPendingFinalizers();
        int baseline = OpenFds();
        foreach (var (label, create) in TopologyCatalog.All)
        {
            var e0 = Assert.Throws<ArgumentOutOfRangeException>(() => create(new TopologyOptions { Workers = 0 }));
            Assert.Contains("Workers = 0", e0.Message);
            var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => create(new TopologyOptions { Workers = 10_000 }));
            Assert.Contains("10,000", e1.Message);
            Assert.Contains("1..256", e1.Message);
            var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => create(new TopologyOptions { Backlog = -1 }));
            Assert.Contains("negative", e2.Message);
            var e3 = Assert.Throws<ArgumentException>(() => create(new TopologyOptions { Address = "localhost:80" }));
            Assert.Contains("localhost", e3.Message);
            Assert.Throws<ArgumentException>(() => create(new TopologyOptions { Address = "127.0.0.1:99999" }));

            using var busy = Listener.Open("127.0.0.1:0");
            var t = create(new TopologyOptions { Address = $"127.0.0.1:{busy.Port}" });
            var e4 = Assert.Throws<SyscallException>(() => t.Start());
            Assert.Equal("EADDRINUSE", e4.ErrnoName);
            Assert.All(t.Threads, th => Assert.False(th.IsAlive));
            t.Dispose();
        }
        Assert.Throws<ArgumentException>(() => TopologyCatalog.Create("apache"));
        Assert.Throws<ArgumentException>(() => TopologyCatalog.Create("nginx", variant: "round-robin"));
        var roles = Assert.Throws<ArgumentException>(() => TopologyCatalog.Create("role-split", variant: "3x5"));
        Assert.Contains("A-acceptors-R-readers", roles.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TopologyCatalog.Create("role-split", variant: "999-acceptors-5-readers"));
        using (var split = (RoleSplit)TopologyCatalog.Create("role-split", variant: "3-acceptors-5-readers"))
            Assert.Equal((3, 5), (split.Acceptors, split.Readers));
        Assert.True(Eventually.Holds(() => OpenFds() <= baseline + 2, TimeSpan.FromSeconds(10)), $"fds: {OpenFds()} vs baseline {baseline}");
    }
}
