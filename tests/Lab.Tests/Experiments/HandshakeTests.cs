using Lab.Experiments;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class HandshakeTests
{
    [Fact]
    public void TheBenchStepsSynSynAckAckAndTheQueuesFollow()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var bench = HandshakeBench.Open(3, "hst");
        var first = bench.SendSyn();
        Assert.Equal(["SYN", "SYN-ACK"], first.Select(s => s.Kind).Take(2));
        Assert.Equal(1, bench.Queues().SynQueue);
        bench.SendAck();
        var q = bench.Queues();
        Assert.Equal((0, 1), (q.SynQueue, q.AcceptQueue));
        Assert.Equal(0ul, bench.Sockets().Single(r => r.State == TcpState.Established).Inode);
        var a = Assert.IsType<AcceptResult.Accepted>(bench.Listener.Accept(TimeSpan.FromSeconds(2), ct: TestContext.Current.CancellationToken));
        using var c = a.Connection;
        Assert.NotEqual(0ul, bench.Sockets().Single(r => r.State == TcpState.Established).Inode);
        Assert.Equal(["SYN", "SYN-ACK", "ACK"], bench.Segments.Select(s => s.Kind).Distinct());
    }

    [Fact]
    public void TheAcceptQueueHoldsBacklogPlusOne()
    {
        // What chapter 02's fill does in its cells: 8 connects, nothing accepted.
        using var listener = Listener.Open("127.0.0.1:0", 3);
        using var group = Clients.Open(listener.LocalEndPoint, 8);
        var q = ListenQueues.Settled(listener.LocalEndPoint);
        Assert.InRange(q.AcceptQueue, ListenQueues.OneAtATime(3), ListenQueues.Racing(3));
        Assert.Equal(3, q.AcceptLimit);
        Assert.Equal(q.AcceptQueue + q.SynQueue, group.CountIn(TcpState.Established));
    }

    [Fact]
    public void TheSynQueueHoldsBacklogPlusOneThenCookies()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        Assert.SkipUnless(Sysctl.ReadInt("net.ipv4.tcp_syncookies") == 1, "measures the syncookies=1 default");
        // Chapter 02's cells: raw SYNs from the other host, its resets dropped, the listener's queues read after.
        using var host = NetHost.Create("hsq");
        using var listener = Listener.Open(new System.Net.IPEndPoint(host.HostAddress, 0), 3);
        using var noResets = host.AddRule("output", $"tcp dport {listener.Port} tcp flags rst drop");
        using var peer = Lab.Packets.RawTcpPeer.Open(host, listener.LocalEndPoint);
        var before = NetCounters.Read();
        Assert.Equal(12, peer.SendSynFlood([host.Address], 12, TimeSpan.FromSeconds(2)));
        Thread.Sleep(300);
        var q = ListenQueues.ForPort(listener.LocalEndPoint);
        var moved = before.Diff(NetCounters.Read());
        Assert.InRange(q.SynQueue, 3 + KernelBehaviours.SynQueueExtra, 3 + KernelBehaviours.SynQueueExtra - 1 + Environment.ProcessorCount);
        Assert.True(moved[NetCounters.Names.TCPReqQFullDoCookies] >= 8, moved.ToString());
    }

    [Fact]
    public void ASlowAcceptorStrandsClientsWhoseCookieAckMetAFullQueue()
    {
        using var listener = Listener.Open("127.0.0.1:0", 3);
        var before = NetCounters.Read();
        using var crowd = Clients.Open(listener.LocalEndPoint, 10);
        var served = new List<Connection>();
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); served.Count < 10 && clock.Elapsed < TimeSpan.FromSeconds(4); )
        {
            Thread.Sleep(250);   // busy first: the queue fills before the first accept, as in the chapter
            if (listener.TryAccept() is AcceptResult.Accepted a) served.Add(a.Connection);
        }
        var q = ListenQueues.ForPort(listener.LocalEndPoint);
        var outcome = new SlowAcceptorOutcome(10, served.Count, crowd.CountIn(TcpState.Established), crowd.CountIn(TcpState.SynSent),
            q.AcceptQueue, q.SynQueue, before.Diff(NetCounters.Read()));
        foreach (var c in served) c.Dispose();
        Assert.True(outcome.Served >= 4, $"served {outcome.Served}");
        Assert.Equal(10, outcome.ClientsEstablished + outcome.ClientsSynSent);
        // A stranded client is ESTABLISHED with nothing on the server's side: only a cookie ACK dropped at a full
        // accept queue leaves that. Other tests may add cookies to the counter, never remove them.
        Assert.True(outcome.Stranded == 0 || outcome.Counters[NetCounters.Names.SyncookiesRecv] >= outcome.Stranded,
            $"{outcome.Stranded} stranded, SyncookiesRecv {outcome.Counters[NetCounters.Names.SyncookiesRecv]}");
    }
}
