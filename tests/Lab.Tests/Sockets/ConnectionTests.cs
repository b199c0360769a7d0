using System.Net.Sockets;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

public class ConnectionTests
{
    /// <summary>A connected pair on loopback: (client, accepted server side).</summary>
    internal static (Listener, Connection client, Connection server) Pair(string at = "127.0.0.1:0")
    {
        var l = Listener.Open(at);
        var client = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.FromSeconds(5))).Connection;
        return (l, client, server);
    }

    static string Ep(System.Net.IPEndPoint ep) => Endpoints.Format(ep);

    [Fact]
    public void InQueueCountsUnreadBytesLikeSsRecvQ()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            const int N = 12_345;
            Assert.True(client.WriteAll(new byte[N]).IsData);
            Assert.True(Eventually.Holds(() => server.InQueue == N), $"InQueue {server.InQueue}");
            var row = Ss.Connection(Ep(server.LocalEndPoint), Ep(server.RemoteEndPoint));
            Assert.Equal("ESTAB", row.State);
            Assert.Equal(N, row.RecvQ);
            Assert.Equal(N, server.InQueue);
            // Read it all: the queue empties.
            var buf = new byte[N];
            Assert.Equal(IoResult.Data(N), server.ReadExactly(buf));
            Assert.Equal(0, server.InQueue);
        }
    }

    [Fact]
    public void OutQueueCountsUnackedBytesLikeSsSendQ()
    {
        // The reader never reads: once its receive buffer and window are full, the writer's unsent bytes stay put,
        // so SIOCOUTQ and ss's Send-Q (both write_seq - snd_una) can be compared.
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            server.ReceiveBufferSize = 16 * 1024;
            client.SendBufferSize = 16 * 1024;
            client.NonBlocking = true;
            var chunk = new byte[4096];
            long written = 0;
            int blocked = 0;
            for (int i = 0; i < 10_000 && blocked < 3; i++)
            {
                var r = client.Write(chunk);
                if (r.IsWouldBlock) { blocked++; Thread.Sleep(50); continue; }
                blocked = 0;
                written += r.Bytes;
            }
            Assert.True(written > 0);
            int outq = 0;
            SsRow? row = null;
            bool stable = Eventually.Holds(() =>
            {
                int a = client.OutQueue;
                row = Ss.Connection(Ep(client.LocalEndPoint), Ep(client.RemoteEndPoint));
                outq = client.OutQueue;
                return a == outq && row.SendQ == outq && outq > 0 && written == outq + (long)server.InQueue;
            });
            Assert.True(stable, $"OutQueue {outq}, ss Send-Q {row?.SendQ}, InQueue on the reader {server.InQueue}");
            Assert.Equal(written, outq + (long)server.InQueue);
        }
    }

    [Fact]
    public void TcpOptionsRoundTrip()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            client.NoDelay = true; Assert.True(client.NoDelay);
            client.NoDelay = false; Assert.False(client.NoDelay);
            client.Cork = true; Assert.True(client.Cork);
            client.Cork = false; Assert.False(client.Cork);
            client.QuickAck = true; Assert.True(client.QuickAck);
            client.QuickAck = false; Assert.False(client.QuickAck);
            // The kernel doubles SO_RCVBUF/SO_SNDBUF (half for its bookkeeping): socket(7).
            server.ReceiveBufferSize = 32 * 1024; Assert.Equal(64 * 1024, server.ReceiveBufferSize);
            server.SendBufferSize = 32 * 1024; Assert.Equal(64 * 1024, server.SendBufferSize);
            Assert.False(server.NonBlocking);
            server.NonBlocking = true; Assert.True(server.NonBlocking);
            Assert.True(server.Read(new byte[10]).IsWouldBlock);
            server.NonBlocking = false; Assert.False(server.NonBlocking);
        }
    }

    [Fact]
    public void ResetMakesThePeersReadSeeReset()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            client.Reset();
            var buf = new byte[16];
            server.SetReceiveTimeout(TimeSpan.FromSeconds(5));
            var r = server.Read(buf);
            Assert.Equal(IoKind.Reset, r.Kind);
            Assert.Equal(Lab.Interop.errno.ECONNRESET, r.Errno);
            // Writing after the reset: EPIPE, also a value.
            Assert.Equal(IoKind.Reset, server.Write(new byte[1]).Kind);
            client.Reset(); // already closed: no-op
        }
    }

    [Fact]
    public void ShutdownWriteMakesThePeerReadEndOfStream()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            Assert.True(client.WriteAll("hello"u8).IsData);
            client.Shutdown(ShutdownHow.Write);
            var buf = new byte[5];
            Assert.Equal(IoResult.Data(5), server.ReadExactly(buf));
            Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buf));
            server.SetReceiveTimeout(TimeSpan.FromSeconds(5));
            Assert.Equal(IoKind.EndOfStream, server.Read(buf).Kind);
            Assert.True(Eventually.Holds(() => server.State == TcpState.CloseWait), server.State.ToString());
            Assert.True(Eventually.Holds(() => client.State == TcpState.FinWait2), client.State.ToString());
            // ReadExactly past the end reports how much came before the FIN.
            Assert.Equal(IoResult.EndOfStream(0), server.ReadExactly(buf, TimeSpan.FromSeconds(5)));
        }
    }

    [Fact]
    public void ReadWithATimeoutOnABlockingSocketIsWouldBlock()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            server.SetReceiveTimeout(TimeSpan.FromMilliseconds(100));
            Assert.True(server.Read(new byte[4]).IsWouldBlock);
            Assert.Throws<TimeoutException>(() => server.ReadSome(new byte[4], TimeSpan.FromMilliseconds(100)));
        }
    }

    [Fact]
    public void TcpInfoOnAnEstablishedConnection()
    {
        var (l, client, server) = Pair();
        using (l) using (client) using (server)
        {
            var payload = new byte[100_000];
            Assert.True(client.WriteAll(payload).IsData);
            var buf = new byte[payload.Length];
            Assert.Equal(IoResult.Data(payload.Length), server.ReadExactly(buf));
            TcpInfo s = server.Info();
            Assert.Equal(TcpState.Established, s.State);
            Assert.Equal((ulong)payload.Length, s.BytesReceived);
            Assert.True(Eventually.Holds(() => client.Info().BytesAcked >= (ulong)payload.Length));
            var c = client.Info();
            // tcpi_bytes_sent counts retransmitted bytes too (a tail loss probe fires when the reader is slow to run on a busy machine).
            Assert.Equal((ulong)payload.Length, c.BytesSent - c.BytesRetrans);
            Assert.True(c.SndMss > 0 && c.RcvMss > 0);
            Assert.True(c.SndCwnd > 0);
            Assert.True(c.RttMicros > 0);
            Assert.True(c.DataSegsOut > 0 && s.DataSegsIn > 0);
            Assert.NotNull(c.SndWnd);
            Assert.True(c.SndWnd > 0);
            if (c.ValidBytes >= 240) { Assert.NotNull(s.RcvWnd); Assert.True(s.RcvWnd > 0); }
            Assert.True((c.Options & Lab.Interop.netinet_tcp.TCPI_OPT_SACK) != 0, "loopback negotiates SACK");
        }
    }

    [Fact]
    public void TcpInfoReadsASystemNetSocketToo()
    {
        using var l = Listener.Open("127.0.0.1:0");
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Connect(l.LocalEndPoint);
        var info = TcpInfo.Read(s.SafeHandle);
        Assert.Equal(TcpState.Established, info.State);
        var e = Assert.Throws<SyscallException>(() => TcpInfo.Read(new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp).SafeHandle));
        Assert.Contains(e.ErrnoName, new[] { "ENOPROTOOPT", "EOPNOTSUPP" }); // 6.18 answers EOPNOTSUPP for a UDP socket
        Assert.Contains("does not apply", e.Hint);
    }

    [Fact]
    public void BeginConnectIsInProgressThenEstablished()
    {
        using var l = Listener.Open("127.0.0.1:0");
        using var c = Client.BeginConnect($"127.0.0.1:{l.Port}");
        Assert.True(c.NonBlocking);
        Assert.True(Eventually.Holds(() => c.State == TcpState.Established), c.State.ToString());
        Assert.Equal(l.LocalEndPoint, c.RemoteEndPoint);
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1));
    }

    [Fact]
    public void ClientsCanBindALocalAddress()
    {
        using var l = Listener.Open("0.0.0.0:0");
        using var c = Client.Connect($"127.0.0.1:{l.Port}", TimeSpan.FromSeconds(5), bindTo: "127.0.0.2:0");
        Assert.Equal(System.Net.IPAddress.Parse("127.0.0.2"), c.LocalEndPoint.Address);
        using var server = Assert.IsType<AcceptResult.Accepted>(l.Accept(TimeSpan.FromSeconds(5), ct: TestContext.Current.CancellationToken)).Connection;
        Assert.Equal(c.LocalEndPoint, server.RemoteEndPoint);
    }
}

[Collection(nameof(ProcessWide))]   // counts this process's fds: nothing may open or close any beside it
public class ClientSafetyTests
{
    [Theory]
    [InlineData("8.8.8.8:53")]
    [InlineData("192.0.2.1:80")]
    [InlineData("10.0.0.1:80")]
    [InlineData("[2001:db8::1]:80")]
    public void ClientsRefuseEveryDestinationOffThisMachine(string destination)
    {
        var fds = Directory.GetFiles("/proc/self/fd").Length;
        var e = Assert.Throws<ArgumentException>(() => Client.Connect(destination, TimeSpan.FromSeconds(1)));
        Assert.Contains(destination.Split(']')[0].TrimStart('[').Split(':')[0], e.Message);
        Assert.Contains("NetHost.Create", e.Message);
        Assert.Throws<ArgumentException>(() => Client.BeginConnect(destination));
        Assert.Throws<ArgumentException>(() => Clients.Open(destination, 3));
        Assert.InRange(Directory.GetFiles("/proc/self/fd").Length, 0, fds + 2);
    }
}
