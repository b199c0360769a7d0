using Lab.Experiments;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Tests.Experiments;

public class ReusePortTests(ITestOutputHelper output)
{
    [Fact]
    public void ManyNewConnectionsSpreadAsAFairHashWould()
    {
        // Chapter 11's experiment: 4 SO_REUSEPORT listeners on one port, 1,200 clients one at a time.
        var reuse = new ListenerOptions { ReusePort = true, NonBlocking = true };
        var group = new List<Listener> { Listener.Open("127.0.0.1:0", 1024, reuse) };
        try
        {
            for (int i = 1; i < 4; i++) group.Add(Listener.Open(group[0].LocalEndPoint, 1024, reuse));
            var perShard = new long[4];
            for (int n = 0; n < 1200; n++)
            {
                using var client = Client.Connect(group[0].LocalEndPoint, TimeSpan.FromSeconds(5));
                int landed = -1;
                Assert.True(Eventually.Holds(() =>
                {
                    for (int s = 0; s < 4 && landed < 0; s++)
                        if (group[s].TryAccept() is AcceptResult.Accepted a) { a.Connection.Dispose(); landed = s; }
                    return landed >= 0;
                }), $"connection {n} reached no listener");
                perShard[landed]++;
            }
            output.WriteLine(string.Join(", ", perShard));
            // A fair hash exceeds the p = 0.001 bound once in a thousand runs: that is this test's false-failure rate.
            Assert.True(ChiSquare.Statistic(perShard) < ChiSquare.Critical(3), $"chi-square {ChiSquare.Statistic(perShard):0.0} for {string.Join("/", perShard)}");
        }
        finally { foreach (var l in group) l.Dispose(); }
    }

    [Fact]
    public void AStalledShardsQueueFillsToItsLimitWhileTheOthersStayEmpty()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin), "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)");
        using var host = NetHost.Create("stall");
        var s = StalledShard.Run(host, shards: 4, backlog: 8, pausedShard: 1, rate: 200, duration: TimeSpan.FromSeconds(2));
        output.WriteLine($"peaks {string.Join(", ", s.PeakQueue)}, accepted {string.Join(", ", s.AcceptedDuringStall)}, after resume {s.AcceptedAfterResume}, {s.Load}");
        // backlog + 1, or one more per CPU when handshakes race (the fullness test takes no lock; chapter 03 measures it).
        Assert.InRange(s.PeakQueue[1], ListenQueues.OneAtATime(8), ListenQueues.Racing(8));
        Assert.Equal(8, s.Limit);
        Assert.Equal(0, s.AcceptedDuringStall[1]);
        // A busy machine can leave a shard's thread off the CPU for a hundred milliseconds or more, and its queue grows
        // meanwhile: "near 0" is a mean, compared with the stalled shard's, which sits at its limit.
        Assert.True(s.MeanQueue[1] >= 6, $"stalled shard's mean queue {s.MeanQueue[1]}");
        Assert.All(new[] { 0, 2, 3 }, i => Assert.True(s.AcceptedDuringStall[i] > 0 && s.MeanQueue[i] <= 2,
            $"shard {i}: peak {s.PeakQueue[i]}, mean {s.MeanQueue[i]}"));
        Assert.True(s.Counters[NetCounters.Names.ListenOverflows] > 0);
        Assert.InRange(s.AcceptedAfterResume, ListenQueues.OneAtATime(8), ListenQueues.Racing(8));
    }

    [Fact]
    public void AClosedShardsQueueIsResetUnlessMigrateReqMovesIt()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin), "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)");
        var root = Sysctl.ReadInt("net.ipv4.tcp_migrate_req");
        using var host = NetHost.Create("migr");
        var reset = ClosedShard.Run(host, migrate: false, shards: 2, clients: 40);
        var moved = ClosedShard.Run(host, migrate: true, shards: 2, clients: 40);
        output.WriteLine(reset.ToString());
        output.WriteLine(moved.ToString());
        Assert.True(reset.Queued > 0 && moved.Queued > 0);
        Assert.Equal(reset.Queued, reset.Reset);
        Assert.Equal(0, reset.AcceptedByOthers);
        Assert.Equal(40 - reset.Queued, reset.Answered);
        Assert.Equal(moved.Queued, moved.AcceptedByOthers);
        Assert.Equal(0, moved.Reset);
        Assert.Equal(40, moved.Answered);
        Assert.Equal(0, host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_migrate_req")));
        Assert.Equal(root, Sysctl.ReadInt("net.ipv4.tcp_migrate_req"));
    }

    [Fact]
    public void DotnetReuseAddressSetsReusePortSoTwoListenersSplitOnePort()
    {
        // Chapter 11's trap, from .NET's own Socket: ReuseAddress makes the runtime set SO_REUSEPORT too.
        static System.Net.Sockets.Socket Listen(System.Net.EndPoint at)
        {
            var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            s.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
            s.Bind(at);
            s.Listen(64);
            s.Blocking = false;
            return s;
        }
        static int Opt(System.Net.Sockets.Socket s, int name) { Span<byte> v = stackalloc byte[4]; s.GetRawSocketOption(1, name, v); return BitConverter.ToInt32(v); }
        using var first = Listen(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        Assert.Equal(1, Opt(first, 2));    // SO_REUSEADDR
        Assert.Equal(1, Opt(first, 15));   // SO_REUSEPORT, never asked for
        using var second = Listen(first.LocalEndPoint!);   // binds: no EADDRINUSE
        using (var plain = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            var e = Assert.Throws<System.Net.Sockets.SocketException>(() => plain.Bind(first.LocalEndPoint!));
            Assert.Equal(System.Net.Sockets.SocketError.AddressAlreadyInUse, e.SocketErrorCode);
        }
        int a = 0, b = 0;
        for (int n = 0; n < 40; n++)
        {
            using var client = Client.Connect((System.Net.IPEndPoint)first.LocalEndPoint!, TimeSpan.FromSeconds(5));
            Assert.True(Eventually.Holds(() =>
            {
                foreach (var (l, i) in new[] { (first, 0), (second, 1) })
                    try { using var _ = l.Accept(); if (i == 0) a++; else b++; return true; }
                    catch (System.Net.Sockets.SocketException x) when (x.SocketErrorCode == System.Net.Sockets.SocketError.WouldBlock) { }
                return false;
            }), $"connection {n} reached neither listener");
        }
        output.WriteLine($"first {a}, second {b}");
        Assert.True(a > 0 && b > 0, $"first {a}, second {b}");
    }
}
