using System.Net;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

public class DeferAcceptTests
{
    [Fact]
    public void TheOptionIsSetOnTheListenerAndReadsBackAsRetransmissionTime()
    {
        using var listener = Listener.Open("127.0.0.1:0");
        Assert.Equal(0, listener.DeferAcceptSeconds);
        listener.DeferAcceptSeconds = 10;
        // secs_to_retrans: 10 s is 4 SYN-ACK retransmissions from a 1 s timeout, and they take 1 + 2 + 4 + 8 s.
        Assert.Equal(15, listener.DeferAcceptSeconds);
        listener.DeferAcceptSeconds = 0;
        Assert.Equal(0, listener.DeferAcceptSeconds);
        Assert.Throws<ArgumentOutOfRangeException>(() => listener.DeferAcceptSeconds = -1);
    }

    [Fact]
    public void WithoutCapabilitiesDataLessClientsShowInTheSynQueueAndSendersReachTheAcceptQueue()
    {
        // What chapter 04's last section does in its cells, on a thread with no capabilities at all.
        var (capEff, before, after, accepted, first) = Unprivileged.Run(() =>
        {
            using var listener = Listener.Open("127.0.0.1:0", 16, new ListenerOptions { NonBlocking = true });
            listener.DeferAcceptSeconds = 10;
            using var clients = ConnectTimer.Run(listener.LocalEndPoint, 4, TimeSpan.Zero, TimeSpan.FromSeconds(5));
            Assert.All(clients.Connected, c => Assert.Equal(TcpState.Established, c.State));
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(listener.LocalEndPoint).SynQueue == 4));
            var before = ListenQueues.ForPort(listener.LocalEndPoint);
            clients.Connected[0].WriteAll("hello"u8, TimeSpan.FromSeconds(2));
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(listener.LocalEndPoint).AcceptQueue == 1));
            var after = ListenQueues.ForPort(listener.LocalEndPoint);
            var taken = new List<Connection>();
            while (listener.TryAccept() is AcceptResult.Accepted a) taken.Add(a.Connection);
            var buffer = new byte[16];
            int n = taken[0].ReadSome(buffer, TimeSpan.FromSeconds(1));
            taken.ForEach(c => c.Dispose());
            return (Capabilities.Effective(), before, after, taken.Count, System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        });
        Assert.Equal(0UL, capEff);
        Assert.Equal((4, 0), (before.SynQueue, before.AcceptQueue));
        Assert.Equal((3, 1), (after.SynQueue, after.AcceptQueue));
        Assert.Equal(1, accepted);
        Assert.Equal("hello", first);
    }
}
