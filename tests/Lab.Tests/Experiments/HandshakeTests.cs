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
        using var host = NetHost.Create("hsq");
        var p = Handshake.ProbeSynQueue(host, 3, 12);
        Assert.InRange(p.SynRecv, ListenQueues.OneAtATime(3), ListenQueues.Racing(3));
        Assert.True(p.ReqQFullDoCookies >= 8, p.ToString());
    }

    [Fact]
    public void ASlowAcceptorStrandsClientsWhoseCookieAckMetAFullQueue()
    {
        using var listener = Listener.Open("127.0.0.1:0", 3);
        var outcome = Handshake.SlowAcceptor(listener, 10, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(4));
        Assert.True(outcome.Served >= 4, $"served {outcome.Served}");
        Assert.Equal(10, outcome.ClientsEstablished + outcome.ClientsSynSent);
        // A stranded client is ESTABLISHED with nothing on the server's side: only a cookie ACK dropped at a full
        // accept queue leaves that. Other tests may add cookies to the counter, never remove them.
        Assert.True(outcome.Stranded == 0 || outcome.Counters[NetCounters.Names.SyncookiesRecv] >= outcome.Stranded,
            $"{outcome.Stranded} stranded, SyncookiesRecv {outcome.Counters[NetCounters.Names.SyncookiesRecv]}");
    }
}
