using System.Net;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

public class ConnectTimerTests
{
    [Fact]
    public void ClientsStartOnTheirScheduleAndEachConnectIsTimed()
    {
        using var listener = Listener.Open("127.0.0.1:0", backlog: 8);
        var every = TimeSpan.FromMilliseconds(50);
        using var run = ConnectTimer.Run(listener.LocalEndPoint, 3, every, TimeSpan.FromSeconds(2));
        Assert.Equal([0, 1, 2], run.Times.Select(t => t.Client));
        Assert.All(run.Times, t => Assert.True(t.Connected && t.Error == null && t.Took < TimeSpan.FromSeconds(2), t.ToString()));
        // Never early; late by at most a busy machine's scheduling.
        Assert.All(run.Times, t => Assert.InRange(t.StartedAt, every * t.Client, every * t.Client + TimeSpan.FromMilliseconds(500)));
        Assert.Equal(3, run.ConnectedCount);
        Assert.All(run.Connected, c => Assert.Equal(TcpState.Established, c.State));
        Assert.Equal(3, ListenQueues.Settled(listener.LocalEndPoint).AcceptQueue);
    }

    [Fact]
    public void AConnectThatRunsOutOfTimeGivesUpAndOneRefusedSaysWhy()
    {
        // Backlog 0: the first handshake fills the accept queue (backlog + 1), and the kernel drops the second SYN.
        using var full = Listener.Open("127.0.0.1:0", backlog: 0);
        var timeout = TimeSpan.FromMilliseconds(300);
        using var run = ConnectTimer.Run(full.LocalEndPoint, 2, TimeSpan.FromMilliseconds(50), timeout);
        Assert.True(run.Times[0].Connected, run.Times[0].ToString());
        Assert.Equal((false, timeout, "timeout"), (run.Times[1].Connected, run.Times[1].Took, run.Times[1].Error));
        Assert.Single(run.Connected);

        int closedPort;
        using (var gone = Listener.Open("127.0.0.1:0")) closedPort = gone.Port;
        using var refused = ConnectTimer.Run(new IPEndPoint(IPAddress.Loopback, closedPort), 1, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        Assert.Equal((false, "ECONNREFUSED"), (refused.Times[0].Connected, refused.Times[0].Error));
        Assert.True(refused.Times[0].Took < TimeSpan.FromSeconds(1), refused.Times[0].ToString());
        Assert.Empty(refused.Connected);
    }

    [Fact]
    public void ItIsBoundedAndDisposingClosesTheClients()
    {
        using var listener = Listener.Open("127.0.0.1:0");
        Assert.Throws<ArgumentOutOfRangeException>(() => ConnectTimer.Run(listener.LocalEndPoint, 1001, TimeSpan.Zero, TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConnectTimer.Run(listener.LocalEndPoint, 1, TimeSpan.FromSeconds(11), TimeSpan.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ConnectTimer.Run(listener.LocalEndPoint, 1, TimeSpan.Zero, TimeSpan.FromSeconds(61)));
        Assert.Empty(ConnectTimer.Run(listener.LocalEndPoint, 0, TimeSpan.Zero, TimeSpan.FromSeconds(1)).Times);
        var run = ConnectTimer.Run(listener.LocalEndPoint, 2, TimeSpan.Zero, TimeSpan.FromSeconds(2));
        run.Dispose();
        run.Dispose();
        Assert.All(run.Connected, c => Assert.True(c.Handle.IsClosed));
    }
}
