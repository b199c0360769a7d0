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
