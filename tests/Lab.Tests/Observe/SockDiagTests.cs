using Lab.Sockets;
using System.Net;
using System.Net.Sockets;
using Lab.Interop;
using Lab.Observe;

namespace Lab.Tests.Observe;

public class SockDiagTests
{
    static string Key(SocketRow r) =>
        $"{r.State.ToSsName()} {r.RecvQ} {r.SendQ} {SocketRow.FormatEndPoint(r.Local, false)} {SocketRow.FormatEndPoint(r.Remote, true)}";

    static string Key(Tool.SsLine l) => $"{l.State} {l.RecvQ} {l.SendQ} {l.Local} {l.Peer}";

    [Fact]
    public void AFullAcceptQueueHoldsBacklogPlusOneAndLeavesLaterClientsInSynSent()
    {
        using var listener = TestSockets.Listen(backlog: 3);
        var ep = listener.EndPoint();
        var before = NetCounters.Read();
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 8; i++) clients.Add(TestSockets.StartConnect(ep));

            // Loopback completes each handshake inside connect(); the wait only covers a slow scheduler.
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(ep).AcceptQueue == 4 && SocketTable.ForPort(ep.Port).CountIn(TcpState.SynSent) == 4),
                "expected 4 queued connections and 4 clients in SYN-SENT; saw " + SocketTable.ForPort(ep.Port));

            var q = ListenQueues.ForPort(ep);
            var ssListen = Assert.Single(Tool.Ss("-ltnH", $"sport = :{ep.Port}"));
            Assert.Equal((4, 3, 0, 1), (q.AcceptQueue, q.AcceptLimit, q.SynQueue, q.Listeners));
            Assert.Equal((ssListen.RecvQ, ssListen.SendQ), (q.AcceptQueue, q.AcceptLimit));

            // Kernel fact on 6.18: with the accept queue full (4 > 3), tcp_conn_request drops the 5th..8th SYNs
            // (ListenOverflows++) before creating a request socket, so nothing is in SYN-RECV and those clients stay
            // in SYN-SENT, retransmitting. The lab's table and ss's agree row for row.
            var table = SocketTable.ForPort(ep.Port);
            var ss = Tool.Ss("-tanH", $"( sport = :{ep.Port} or dport = :{ep.Port} )");
            Assert.Equal(ss.Select(Key).Order(), table.Select(Key).Order());
            Assert.Equal(4, table.CountIn(TcpState.SynSent));
            Assert.Equal(4, ss.Count(l => l.State == "SYN-SENT"));
            Assert.Equal(0, table.CountIn(TcpState.NewSynRecv));
            Assert.Equal(4 + 4 + 4 + 1, table.Count); // 4 clients ESTAB, 4 server ends ESTAB, 4 SYN-SENT, the listener

            var overflowsLab = NetCounters.Read()[NetCounters.Names.ListenOverflows];
            var overflowsNstat = Tool.Nstat("TcpExtListenOverflows")["TcpExtListenOverflows"];
            var overflowsLabAfter = NetCounters.Read()[NetCounters.Names.ListenOverflows];
            Assert.True(overflowsLab - before[NetCounters.Names.ListenOverflows] >= 4, $"ListenOverflows grew by {overflowsLab - before[NetCounters.Names.ListenOverflows]}");
            Assert.InRange(overflowsNstat, overflowsLab, overflowsLabAfter);
        }
        finally { TestSockets.DisposeAll(clients); }
    }

    [Fact]
    public void ABacklogAboveSomaxconnReadsBackClampedToSomaxconn()
    {
        long somaxconn = Sysctl.ReadInt("net.core.somaxconn");
        Assert.SkipWhen(somaxconn >= int.MaxValue - 1, "somaxconn is at its maximum: no backlog can exceed it");
        using var listener = TestSockets.Listen(backlog: (int)Math.Min(somaxconn * 2 + 1, int.MaxValue));
        var q = ListenQueues.ForPort(listener.EndPoint());
        var ss = Assert.Single(Tool.Ss("-ltnH", $"sport = :{listener.Port()}"));
        Assert.Equal(somaxconn, q.AcceptLimit);
        Assert.Equal(somaxconn, ss.SendQ);
    }

    [Fact]
    public void DeferAcceptKeepsDatalessConnectionsInTheSynQueue()
    {
        using var listener = TestSockets.Listen(backlog: 16, deferAcceptSeconds: 10);
        var ep = listener.EndPoint();
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 5; i++) clients.Add(TestSockets.StartConnect(ep));
            // The clients finish their handshake; the server drops each data-less final ACK (TCP_DEFER_ACCEPT) and
            // keeps the request socket in SYN-RECV until data comes or the defer period ends.
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(ep).SynQueue == 5), "SYN queue: " + ListenQueues.ForPort(ep));
            var q = ListenQueues.ForPort(ep);
            var ss = Tool.Ss("-tanH", "state", "syn-recv", $"( sport = :{ep.Port} )");
            Assert.Equal(5, q.SynQueue);
            Assert.Equal(0, q.AcceptQueue);
            Assert.Equal(ss.Count, q.SynQueue);

            var table = SocketTable.ForPort(ep.Port);
            var requests = table.InState(TcpState.NewSynRecv);
            Assert.Equal(5, requests.Count);
            Assert.Equal(ss.Select(l => (l.Local, l.Peer)).Order(), requests.Select(r => (SocketRow.FormatEndPoint(r.Local, false), SocketRow.FormatEndPoint(r.Remote, true))).Order());
            // A request socket has no inode or owner yet (tcp_req_diag_fill zeroes them) but does have a cookie.
            Assert.All(requests, r => Assert.Equal((0UL, 0U, 1), (r.Inode, r.Uid, r.Timer)));
            Assert.All(requests, r => Assert.NotEqual(0UL, r.Cookie));
            Assert.Equal(5, table.CountIn(TcpState.Established)); // the clients' ends
        }
        finally { TestSockets.DisposeAll(clients); }
    }

    /// <summary>
    /// Which idiag_states bits make the kernel dump request sockets (TCP_NEW_SYN_RECV = 12)? tcp_diag_dump:
    /// "if (idiag_states &amp; TCPF_SYN_RECV) idiag_states |= TCPF_NEW_SYN_RECV". Proven here on real request sockets:
    /// bit 12 alone dumps them, bit 3 alone dumps them too, every other bit dumps none; and the kernel reports them with
    /// idiag_state 3 and without the INET_DIAG_SHUTDOWN attribute every full socket carries.
    /// </summary>
    [Fact]
    public void RequestSocketsAreDumpedByBit12OrBit3AndReportedAsState3()
    {
        using var listener = TestSockets.Listen(backlog: 16, deferAcceptSeconds: 10);
        var ep = listener.EndPoint();
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 3; i++) clients.Add(TestSockets.StartConnect(ep));
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(ep).SynQueue == 3));
            using var diag = SockDiag.Open();

            List<(byte Raw, TcpState State)> Dump(uint mask)
            {
                var v = new RawCollector { Rows = new() };
                diag.Dump(AddressFamily.InterNetwork, mask, ep.Port, 0, -1, ref v);
                return v.Rows;
            }

            var bit12 = Dump(1u << 12);
            var bit3 = Dump(1u << 3);
            var others = Dump(0x1FFFu & ~(1u << 3) & ~(1u << 12));
            Assert.Equal(3, bit12.Count);
            Assert.All(bit12, r => Assert.Equal(((byte)3, TcpState.NewSynRecv), r));
            Assert.Equal(3, bit3.Count);
            Assert.All(bit3, r => Assert.Equal(TcpState.NewSynRecv, r.State));
            Assert.DoesNotContain(others, r => r.State == TcpState.NewSynRecv || r.Raw == 3);
            Assert.Contains(others, r => r.State == TcpState.Listen);
            Assert.Equal(3, Tool.Ss("-tanH", "state", "syn-recv", $"( sport = :{ep.Port} )").Count);
        }
        finally { TestSockets.DisposeAll(clients); }
    }

    struct RawCollector : IDiagRowVisitor
    {
        public List<(byte, TcpState)> Rows;
        public void Row(in inet_diag_msg msg, TcpState state) => Rows.Add((msg.idiag_state, state));
    }

    [Fact]
    public void UnreadBytesShowAsRecvQWithTheSocketsInodeCookieAndOwner()
    {
        using var listener = TestSockets.Listen(backlog: 4);
        var (client, server) = TestSockets.ConnectedPair(listener);
        using (client)
        using (server)
        {
            const int N = 1234;
            Assert.Equal(N, client.Send(new byte[N]));
            var serverLocal = (IPEndPoint)server.LocalEndPoint!;
            var serverRemote = (IPEndPoint)server.RemoteEndPoint!;
            SocketRow? Row() => SocketTable.ForPort(listener.Port()).FirstOrDefault(r =>
                r.State == TcpState.Established && r.Local.Equals(serverLocal) && r.Remote.Equals(serverRemote));
            Assert.True(Eventually.Holds(() => Row()?.RecvQ == N), $"server row: {Row()}");

            var row = Row()!;
            var ss = Tool.Ss("-tanHe", $"( sport = :{listener.Port()} or dport = :{listener.Port()} )")
                .Single(l => l.Local == SocketRow.FormatEndPoint(serverLocal, false) && l.Peer == SocketRow.FormatEndPoint(serverRemote, true));
            Assert.Equal(ss.RecvQ, row.RecvQ);
            Assert.Equal(0, row.SendQ);
            Assert.Equal(server.Inode(), row.Inode);
            Assert.Equal(server.Cookie(), row.Cookie);
            if (Environment.IsPrivilegedProcess) Assert.Equal(0U, row.Uid);
            // ss -e prints "uid:U ino:I sk:COOKIE(hex)", leaving uid out when it is 0.
            Assert.Contains($"ino:{row.Inode}", ss.Rest);
            Assert.Contains($"sk:{row.Cookie:x}", ss.Rest);
            Assert.Equal(row.Uid == 0 ? null : $"uid:{row.Uid}", ss.Rest.FirstOrDefault(f => f.StartsWith("uid:")));
            Assert.StartsWith("ESTAB", row.ToString());
            Assert.Contains($"{serverLocal} ", row.ToString());
        }
    }

    [Fact]
    public void IPv6ListenersAndConnectionsAreRead()
    {
        Assert.SkipUnless(Socket.OSSupportsIPv6 && Interfaces.Find("lo")?.Addresses.Contains(IPAddress.IPv6Loopback) == true, "no ::1 on lo");
        using var listener = TestSockets.Listen(backlog: 5, IPAddress.IPv6Loopback);
        var (client, server) = TestSockets.ConnectedPair(listener);
        using (client)
        using (server)
        {
            var q = ListenQueues.ForPort(listener.EndPoint());
            Assert.Equal((0, 5, 1), (q.AcceptQueue, q.AcceptLimit, q.Listeners));
            var table = SocketTable.ForPort(listener.Port());
            var ss = Tool.Ss("-tanH", $"( sport = :{listener.Port()} or dport = :{listener.Port()} )");
            Assert.Equal(ss.Select(Key).Order(), table.Select(Key).Order());
            Assert.All(table, r => Assert.Equal(AddressFamily.InterNetworkV6, r.Family));
            Assert.Contains(table, r => r.State == TcpState.Listen && SocketRow.FormatEndPoint(r.Local, false) == $"[::1]:{listener.Port()}");
        }
    }

    [Fact]
    public void ListenersMatchSs()
    {
        using var listener = TestSockets.Listen(backlog: 7);
        var lab = SocketTable.Listeners();
        var ss = Tool.Ss("-ltnH");
        Assert.Contains(lab, r => r.Local.Equals(listener.EndPoint()) && r.SendQ == 7);
        Assert.All(lab, r => Assert.Equal(TcpState.Listen, r.State));
        // Listeners come and go as other tests run: compare the ones both saw.
        var labKeys = lab.Select(r => SocketRow.FormatEndPoint(r.Local, false)).ToHashSet();
        Assert.Contains(SocketRow.FormatEndPoint(listener.EndPoint(), false), ss.Select(l => l.Local));
        Assert.True(ss.Count(l => labKeys.Contains(l.Local)) >= 1);
    }

    [Fact]
    public void NobodyListeningIsAValueNotAnError()
    {
        // A port nobody listens on, held by a socket that is bound but not listening: a port freed by closing a
        // listener could be handed at once to another test's listener (N3 on a fresh clone read one, backlog 1).
        using var holder = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        holder.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        int port = ((System.Net.IPEndPoint)holder.LocalEndPoint!).Port;
        var q = ListenQueues.ForPort(port);
        Assert.Equal((0, 0, 0, 0), (q.Listeners, q.AcceptQueue, q.AcceptLimit, q.SynQueue));
        Assert.Contains("no listener", q.ToString());
    }

    [Fact]
    public void KernelFilteringMatchesUserSpaceFiltering()
    {
        using var listener = TestSockets.Listen(backlog: 4);
        var (client, server) = TestSockets.ConnectedPair(listener);
        using (client)
        using (server)
        {
            int port = listener.Port();
            var all = SockDiag.Query();
            var byBytecode = SockDiag.Query(new SocketFilter { AnyPort = port });
            var byLocal = SockDiag.Query(new SocketFilter { LocalPort = port, Family = AddressFamily.InterNetwork });
            var byRemote = SockDiag.Query(new SocketFilter { RemotePort = port });
            Assert.Equal(3, byBytecode.Count);
            Assert.Equal(all.Where(r => r.Local.Port == port || r.Remote.Port == port).Select(r => r.Cookie).Order(), byBytecode.Select(r => r.Cookie).Order());
            Assert.Equal(2, byLocal.Count);   // the listener and the accepted end
            Assert.Single(byRemote);          // the client's end
            Assert.Equal(client.Cookie(), byRemote[0].Cookie);
        }
    }
}

public class SockDiagRecoveryTests
{
    struct Throwing : IDiagRowVisitor
    {
        public void Row(in inet_diag_msg msg, TcpState state) => throw new InvalidOperationException("stop here");
    }

    /// <summary>
    /// A dump abandoned after its first datagram is still running in the kernel, which refuses the next dump on
    /// that socket with EBUSY; the reader must start afresh. 250 connections make the dump span several datagrams.
    /// </summary>
    [Fact]
    public void AReaderRecoversFromADumpAbandonedMidway()
    {
        using var listener = TestSockets.Listen(backlog: 512);
        var pairs = new List<(Socket, Socket)>();
        try
        {
            for (int i = 0; i < 250; i++) pairs.Add(TestSockets.ConnectedPair(listener));
            using var diag = SockDiag.Open();
            var filter = new SocketFilter { AnyPort = listener.Port() };
            var v = new Throwing();
            Assert.Throws<InvalidOperationException>(() => diag.Dump(AddressFamily.InterNetwork, 1u << 1, 0, 0, listener.Port(), ref v));
            Assert.Equal(500, diag.Read(filter with { States = new HashSet<TcpState> { TcpState.Established } }).Count);
            Assert.Equal(501, diag.Read(filter).Count);
            Assert.Equal(500, Tool.Ss("-tanH", "state", "established", $"( sport = :{listener.Port()} or dport = :{listener.Port()} )").Count);
        }
        finally
        {
            foreach (var (c, s) in pairs) { c.Dispose(); s.Dispose(); }
        }
    }
}

public class SocketTableForEndPointTests
{
    [Fact]
    public void OneListenersTableLeavesOutSocketsThatOnlyShareItsPortNumber()
    {
        using var listener = Lab.Sockets.Listener.Open("127.0.0.1:0", backlog: 8);
        // Another listener on the same port number at another loopback address: same port, different socket.
        using var other = Lab.Sockets.Listener.Open(new IPEndPoint(IPAddress.Parse("127.0.0.2"), listener.Port), backlog: 8);
        using var mine = Lab.Sockets.Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(5));
        using var theirs = Lab.Sockets.Client.Connect(other.LocalEndPoint, TimeSpan.FromSeconds(5));
        var table = SocketTable.ForEndPoint(listener.LocalEndPoint);
        Assert.Contains(table, r => r.State == TcpState.Listen && r.Local.Equals(listener.LocalEndPoint));
        Assert.Contains(table, r => r.State == TcpState.Established && r.Remote.Equals(listener.LocalEndPoint));
        Assert.DoesNotContain(table, r => r.Local.Address.Equals(IPAddress.Parse("127.0.0.2")) || r.Remote.Address.Equals(IPAddress.Parse("127.0.0.2")));
        Assert.True(SocketTable.ForPort(listener.Port).Count > table.Count);
        // ss agrees when asked for this endpoint only.
        var ss = Tool.Ss("-tanH", $"( src 127.0.0.1:{listener.Port} or dst 127.0.0.1:{listener.Port} )");
        Assert.Equal(ss.Count, table.Count);
    }
}
