using Lab.Experiments;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class AcceptTests
{
    [Fact]
    public void AParkedAcceptorSleepsInAcceptUntilAClientConnects()
    {
        using var listener = Listener.Open("127.0.0.1:0", 4);
        using var parked = ParkedAcceptor.Start(listener, TimeSpan.FromSeconds(10));
        var look = parked.Look();
        Assert.True(look.InAccept, look.ToString());
        Assert.Equal('S', look.State);
        using var client = Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(2));
        Assert.IsType<AcceptResult.Accepted>(parked.Join(TimeSpan.FromSeconds(3)));
    }

    [Theory]
    [InlineData(1, 0, 1)]
    [InlineData(2, 0, 3)]
    [InlineData(3, 0, 7)]
    [InlineData(4, 4, 4)]
    [InlineData(5, 4, 5)]
    [InlineData(6, 4, 7)]
    [InlineData(7, 4, 11)]
    public void TheSynScheduleIsLinearThenDoubles(int retransmission, int linear, double at) =>
        Assert.Equal(at, FullQueueLatency.SynRetransmitAt(retransmission, linear));

    [Fact]
    public void ASysctlSetInsideAHostIsRestoredThereFromAnotherThread()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "needs CAP_NET_ADMIN (run as root)");
        var root = Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow");
        using var host = NetHost.Create("sysr");
        var scope = host.Run(() => Sysctl.Set("net.ipv4.tcp_abort_on_overflow", 1 - root));
        Assert.Equal(1 - root, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow")));
        Assert.Equal(root, Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow"));
        scope.Dispose(); // on this thread, outside the namespace
        Assert.Equal(root, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow")));
        Assert.Equal(root, Sysctl.ReadInt("net.ipv4.tcp_abort_on_overflow"));
    }

    [Fact]
    public void TheFinalAckMeetingAFullQueueIsResetOnlyWithAbortOnOverflow()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.NetRaw), "needs CAP_NET_ADMIN and CAP_NET_RAW");
        using var host = NetHost.Create("aoo");
        Assert.Equal("SYN-ACK again", AcceptOverflow.FinalAckMeetsFullQueue(host, 0).Answer);
        Assert.Equal("RST", AcceptOverflow.FinalAckMeetsFullQueue(host, 1).Answer);
    }
}
