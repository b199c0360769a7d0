using System.Diagnostics;
using System.Net;
using Lab.Interop;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

public class ListenerTests
{
    [Fact]
    public void PortZeroResolvesThroughGetsockname()
    {
        using var l = Listener.Open("127.0.0.1:0", backlog: 5);
        Assert.NotEqual(0, l.Port);
        Assert.Equal(IPAddress.Loopback, l.LocalEndPoint.Address);
        Assert.Equal(5, l.RequestedBacklog);
        var row = Ss.Listening(l.Port);
        Assert.Equal($"127.0.0.1:{l.Port}", row.Local);
        Assert.Equal(5, row.SendQ);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryAcceptOnAnEmptyQueueIsWouldBlock(bool nonBlocking)
    {
        using var l = Listener.Open("127.0.0.1:0", options: new ListenerOptions { NonBlocking = nonBlocking });
        var sw = Stopwatch.StartNew();
        Assert.IsType<AcceptResult.WouldBlock>(l.TryAccept());
        Assert.Same(AcceptResult.WouldBlock.Instance, l.TryAccept(AcceptFlags.NonBlock | AcceptFlags.CloseOnExec));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"TryAccept took {sw.Elapsed}");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TryAcceptTakesAQueuedConnection(bool nonBlocking)
    {
        using var l = Listener.Open("127.0.0.1:0", options: new ListenerOptions { NonBlocking = nonBlocking });
        using var client = Client.Connect($"127.0.0.1:{l.Port}", TimeSpan.FromSeconds(5));
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1));
        var r = Assert.IsType<AcceptResult.Accepted>(l.TryAccept(AcceptFlags.NonBlock | AcceptFlags.CloseOnExec));
        using var server = r.Connection;
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.Equal(l.LocalEndPoint, server.LocalEndPoint);
        Assert.True(server.NonBlocking);
        Assert.Equal(TcpState.Established, server.State);
        Assert.IsType<AcceptResult.WouldBlock>(l.TryAccept());
    }

    [Fact]
    public void AConnectionResetWhileQueuedIsStillAcceptedOnLinux()
    {
        // Linux keeps a reset child in the accept queue and hands it out (state Close); ECONNABORTED is not what
        // a learner sees here. The reset shows on the first read instead.
        using var l = Listener.Open("127.0.0.1:0");
        var client = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1));
        client.Reset();
        Assert.True(Eventually.Holds(() => !Ss.Rows(l.Port).Any(r => r.State == "ESTAB" && r.Local == Endpoints.Format(l.LocalEndPoint))));
        using var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.Zero, ct: TestContext.Current.CancellationToken)).Connection;
        Assert.Equal(TcpState.Close, server.State);
        Assert.Equal(IoKind.Reset, server.Read(new byte[8]).Kind);
    }

    [Fact]
    public void AcceptWithAZeroTimeoutLooksOnce()
    {
        using var l = Listener.Open("127.0.0.1:0");
        Assert.IsType<AcceptResult.TimedOut>(l.Accept(TimeSpan.Zero, ct: TestContext.Current.CancellationToken));
        using var client = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1));
        using var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.Zero, ct: TestContext.Current.CancellationToken)).Connection;
    }

    [Fact]
    public void BlockingAcceptTimesOutAsAValue()
    {
        using var l = Listener.Open("127.0.0.1:0");
        var sw = Stopwatch.StartNew();
        var r = l.Accept(TimeSpan.FromMilliseconds(200), ct: TestContext.Current.CancellationToken);
        sw.Stop();
        Assert.IsType<AcceptResult.TimedOut>(r);
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void NonBlockingListenerAcceptTimesOutToo()
    {
        using var l = Listener.Open("127.0.0.1:0", options: new ListenerOptions { NonBlocking = true });
        var sw = Stopwatch.StartNew();
        Assert.IsType<AcceptResult.TimedOut>(l.Accept(TimeSpan.FromMilliseconds(200), ct: TestContext.Current.CancellationToken));
        Assert.InRange(sw.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task BlockingAcceptReturnsAConnectionThatArrivesWhileWaiting()
    {
        using var l = Listener.Open("127.0.0.1:0");
        var (accepting, tid) = ThreadWaits.OnThread(() => l.Accept(TimeSpan.FromSeconds(10)));
        ThreadWaits.InAccept(tid);   // waiting already: the connection arrives during the accept, not before it
        using var client = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        Assert.True(await accepting.CompletesWithin(TimeSpan.FromSeconds(10)));
        using var server = Assert.IsType<AcceptResult.Accepted>(await accepting).Connection;
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
    }

    [Fact]
    public void BlockingAcceptWaitsInsideTheKernelAndCancels()
    {
        // The chapter shows this thread parked in accept: /proc/self/task/<tid>/wchan names the kernel function
        // (inet_csk_accept on 6.18), and /proc/self/task/<tid>/syscall starts with 288 (accept4 on x86_64).
        using var l = Listener.Open("127.0.0.1:0");
        using var cts = new CancellationTokenSource();
        int tid = 0;
        Exception? thrown = null;
        var t = new Thread(() =>
        {
            Volatile.Write(ref tid, unistd.gettid());
            try { l.Accept(ct: cts.Token); } catch (Exception e) { thrown = e; }
        }) { IsBackground = true };
        t.Start();
        Assert.True(Eventually.Holds(() => Volatile.Read(ref tid) != 0));
        ThreadWaits.InAccept(tid);

        var sw = Stopwatch.StartNew();
        cts.Cancel();
        Assert.True(t.Join(TimeSpan.FromSeconds(5)), "Accept did not return within 5 s of cancellation");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"cancellation took {sw.Elapsed} (slices are 100 ms)");
        Assert.IsAssignableFrom<OperationCanceledException>(thrown);
    }

    [Fact]
    public async Task DisposingTheListenerEndsABlockingAccept()
    {
        // Disposal throws ObjectDisposedException whether or not Accept was waiting; the claim is that it ends an accept4
        // the thread is blocked in, so the thread is first seen asleep there.
        var l = Listener.Open("127.0.0.1:0");
        var (accepting, tid) = ThreadWaits.OnThread(() => l.Accept());
        ThreadWaits.InAccept(tid);
        l.Dispose();
        var done = await Task.WhenAny(accepting, Task.Delay(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
        Assert.Same(accepting, done);
        Assert.IsType<ObjectDisposedException>(accepting.Exception!.InnerException);
    }

    [Fact]
    public void AcceptQueueFillsToBacklogPlusOneAndMatchesSs()
    {
        using var l = Listener.Open("127.0.0.1:0", backlog: 3, new ListenerOptions { NonBlocking = true });
        using var clients = Clients.Open(l.LocalEndPoint, 8);
        // The kernel accepts handshakes while length <= limit: backlog 3 lets 4 wait; the other SYNs are dropped.
        AcceptQueueReading reading = l.ReadAcceptQueue();
        Assert.True(Eventually.Holds(() => (reading = l.ReadAcceptQueue()).Length == 4),
            $"accept queue read {reading}; clients {clients}");
        Window.Of(TimeSpan.FromMilliseconds(200), "SYNs keep coming (retransmits); the queue must not grow past 4 meanwhile");
        reading = l.ReadAcceptQueue();
        Assert.Equal(new AcceptQueueReading(4, 3), reading);
        Assert.True(reading.Full);
        var ss = Ss.Listening(l.Port);
        Assert.Equal(reading.Length, ss.RecvQ);
        Assert.Equal(reading.Limit, ss.SendQ);
        Assert.True(clients.CountIn(TcpState.Established) >= 4, clients.ToString());
    }

    [Fact]
    public void ListenZeroAdmitsExactlyOneConnectionOneAtATime()
    {
        // Chapter 03's check: the queue is full when it holds more than the limit, so listen(fd, 0) still lets one in.
        using var l = Listener.Open("127.0.0.1:0", backlog: 0);
        var clients = new List<Connection>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                var c = Client.BeginConnect(l.LocalEndPoint);
                clients.Add(c);
                SpinWait.SpinUntil(() => c.State == TcpState.Established, TimeSpan.FromMilliseconds(300));
                Lab.Observe.ListenQueues.Settled(l.LocalEndPoint);
            }
            Assert.Equal(new AcceptQueueReading(1, 0), l.ReadAcceptQueue());
            Assert.Equal(1, clients.Count(c => c.State == TcpState.Established));
            Assert.Equal(2, clients.Count(c => c.State == TcpState.SynSent));
        }
        finally { clients.ForEach(c => c.Dispose()); }
    }

    [Fact]
    public void BacklogAboveSomaxconnIsClamped()
    {
        int somaxconn = int.Parse(File.ReadAllText("/proc/sys/net/core/somaxconn").Trim());
        using var l = Listener.Open("127.0.0.1:0", backlog: somaxconn + 1000);
        Assert.Equal(somaxconn + 1000, l.RequestedBacklog);
        Assert.Equal(new AcceptQueueReading(0, somaxconn), l.ReadAcceptQueue());
        Assert.Equal(somaxconn, Ss.Listening(l.Port).SendQ);
    }

    [Fact]
    public void OptionsBacklogAppliesWhenTheArgumentIsLeftAtItsDefault()
    {
        using var l = Listener.Open("127.0.0.1:0", options: new ListenerOptions { Backlog = 7 });
        Assert.Equal(7, l.ReadAcceptQueue().Limit);
    }

    [Fact]
    public void ListenerOptionsReachTheSocket()
    {
        using var l = Listener.Open("127.0.0.1:0", options: new ListenerOptions
        {
            ReuseAddress = true, ReusePort = true, DeferAcceptSeconds = 5, ReceiveBufferSize = 65536, SendBufferSize = 65536,
        });
        Assert.Equal(1, Get(l, sys_socket.SOL_SOCKET, sys_socket.SO_REUSEADDR));
        Assert.Equal(1, Get(l, sys_socket.SOL_SOCKET, sys_socket.SO_REUSEPORT));
        Assert.True(Get(l, sys_socket.IPPROTO_TCP, netinet_tcp.TCP_DEFER_ACCEPT) >= 5); // rounded up to whole SYN-ACK retransmissions
        Assert.Equal(2 * 65536, Get(l, sys_socket.SOL_SOCKET, sys_socket.SO_RCVBUF));
        Assert.Equal(2 * 65536, Get(l, sys_socket.SOL_SOCKET, sys_socket.SO_SNDBUF));

        // SO_REUSEPORT on both: a second listener on the same port is allowed (its own accept queue).
        using var twin = Listener.Open(l.LocalEndPoint, options: new ListenerOptions { ReusePort = true });
        Assert.Equal(l.Port, twin.Port);
        Assert.Equal(2, Ss.Rows(l.Port).Count(r => r.State == "LISTEN"));
    }

    static int Get(Listener l, int level, int name) => Sys.GetInt(l.Handle, level, name, "test");

    [Fact]
    public void Ipv6ListenerAcceptsAnIpv6Client()
    {
        using var l = Listener.Open("[::1]:0");
        Assert.Equal(IPAddress.IPv6Loopback, l.LocalEndPoint.Address);
        using var client = Client.Connect($"[::1]:{l.Port}", TimeSpan.FromSeconds(5));
        using var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.FromSeconds(5), ct: TestContext.Current.CancellationToken)).Connection;
        Assert.Equal(client.LocalEndPoint, server.RemoteEndPoint);
        Assert.Equal($"[::1]:{l.Port}", Ss.Listening(l.Port).Local);
    }

    [Fact]
    public void DualStackListenerAcceptsAnIpv4Client()
    {
        using var l = Listener.Open("[::]:0", options: new ListenerOptions { V6Only = false });
        using var client = Client.Connect($"127.0.0.1:{l.Port}", TimeSpan.FromSeconds(5));
        using var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.FromSeconds(5), ct: TestContext.Current.CancellationToken)).Connection;
        // An IPv4 peer on an IPv6 socket appears as an IPv4-mapped address.
        Assert.True(server.RemoteEndPoint.Address.IsIPv4MappedToIPv6, server.RemoteEndPoint.ToString());
        Assert.Equal(IPAddress.Loopback, server.RemoteEndPoint.Address.MapToIPv4());
        Assert.Equal(client.LocalEndPoint.Port, server.RemoteEndPoint.Port);
    }

    [Fact]
    public void V6OnlyListenerRefusesIpv4Clients()
    {
        using var l = Listener.Open("::", options: new ListenerOptions { V6Only = true });
        var e = Assert.Throws<SyscallException>(() => Client.Connect($"127.0.0.1:{l.Port}", TimeSpan.FromSeconds(5)));
        Assert.Equal("ECONNREFUSED", e.ErrnoName);
    }

    [Fact]
    public void BadInputIsNamedWithWhatToDo()
    {
        var e = Assert.Throws<ArgumentException>(() => Listener.Open("127.0.0.1:99999"));
        Assert.Contains("'127.0.0.1:99999'", e.Message);
        Assert.Contains("0-65535", e.Message);
        Assert.Equal("endpoint", e.ParamName);
        Assert.Contains("localhost", Assert.Throws<ArgumentException>(() => Listener.Open("localhost:80")).Message);
        Assert.Contains("[::1]:8080", Assert.Throws<ArgumentException>(() => Listener.Open("::1:80:x")).Message);
        var b = Assert.Throws<ArgumentOutOfRangeException>(() => Listener.Open("127.0.0.1:0", backlog: -1));
        Assert.Equal("backlog", b.ParamName);
        Assert.Contains("somaxconn", b.Message);
        Assert.Throws<ArgumentException>(() => Client.Connect("127.0.0.1:0"));
    }

    [Theory]
    [InlineData("127.0.0.1:8080", "127.0.0.1", 8080)]
    [InlineData("0.0.0.0:0", "0.0.0.0", 0)]
    [InlineData("[::]:0", "::", 0)]
    [InlineData("[::1]:80", "::1", 80)]
    [InlineData("::", "::", 0)]
    [InlineData("::1", "::1", 0)]
    [InlineData("127.0.0.1", "127.0.0.1", 0)]
    [InlineData(" [::1] ", "::1", 0)]
    public void EndpointsParse(string text, string address, int port)
    {
        var ep = Endpoints.Parse(text);
        Assert.Equal(IPAddress.Parse(address), ep.Address);
        Assert.Equal(port, ep.Port);
    }

    [Theory]
    [InlineData("")]
    [InlineData("127.0.0.1:")]
    [InlineData("127.0.0.1:-1")]
    [InlineData(":8080")]
    [InlineData("1.2.3:80")]
    [InlineData("[::1:80")]
    [InlineData("[127.0.0.1]:80")]
    [InlineData("example.com:80")]
    public void EndpointsRefuse(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => Endpoints.Parse(text));
        Assert.Contains("127.0.0.1:8080", e.Message);
    }
}
