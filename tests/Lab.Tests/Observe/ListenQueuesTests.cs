using Lab.Sockets;
using System.Diagnostics;
using System.Net;
using Lab.Observe;

namespace Lab.Tests.Observe;

public class ListenQueuesTests(ITestOutputHelper output)
{
    /// <summary>
    /// A reader reuses one netlink socket and prebuilt requests: a read allocates nothing on the managed heap
    /// (the reading is a struct). Its time is the kernel's walk of the listen table and the established table
    /// (tcp_ehash_entries buckets, one walk per family), reported here, not asserted: on a busy machine beside the
    /// rest of the suite one read of both queues took 34 ms, so the reads stop after 3 s (at least 20 are made).
    /// </summary>
    [Fact]
    public void AReaderAllocatesNothingPerReadAndAgreesWithSs()
    {
        using var listener = TestSockets.Listen(backlog: 9);
        var ep = listener.EndPoint();
        var (client, server) = TestSockets.ConnectedPair(listener);
        var extra = TestSockets.StartConnect(ep);
        using (client) using (server) using (extra)
        {
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(ep).AcceptQueue == 1));
            foreach (var (name, reader) in new[]
            {
                ("accept queue only", ListenQueues.Reader(ep, includeSynQueue: false)),
                ("both queues, one family (address given)", ListenQueues.Reader(ep)),
                ("both queues, both families", ListenQueues.Reader(ep.Port)),
            })
            {
                using (reader)
                {
                    for (int i = 0; i < 20; i++) reader.Read(); // warm up (JIT, buffers)
                    const int Most = 300, Least = 20;
                    long allocated = GC.GetAllocatedBytesForCurrentThread();
                    var sw = Stopwatch.StartNew();
                    ListenQueueReading last = default;
                    int N = 0;
                    while (N < Most && (N < Least || sw.Elapsed < TimeSpan.FromSeconds(3))) { last = reader.Read(); N++; }
                    sw.Stop();
                    long perRead = (GC.GetAllocatedBytesForCurrentThread() - allocated) / N;
                    output.WriteLine($"{name}: {N} reads, {sw.Elapsed.TotalMicroseconds / N:0} µs and {perRead} bytes per read; {last}");
                    var ss = Assert.Single(Tool.Ss("-ltnH", $"sport = :{ep.Port}"));
                    Assert.Equal((ss.RecvQ, ss.SendQ), (last.AcceptQueue, last.AcceptLimit));
                    Assert.Equal((1, 9, reader.IncludesSynQueue ? 0 : -1), (last.AcceptQueue, last.AcceptLimit, last.SynQueue));
                    Assert.True(perRead < 16, $"{perRead} bytes allocated per read over {N} reads");
                }
            }
        }
    }

    [Fact]
    public void AnAddressSelectsOneOfTwoListenersOnAPort()
    {
        // Two listeners share a port on different loopback addresses; each reading sees only its own.
        using var a = TestSockets.Listen(backlog: 2, IPAddress.Parse("127.0.0.1"));
        using var b = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        b.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), a.Port()));
        b.Listen(6);
        var c = TestSockets.StartConnect(new IPEndPoint(IPAddress.Parse("127.0.0.2"), a.Port()));
        using (c)
        {
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort((IPEndPoint)b.LocalEndPoint!).AcceptQueue == 1));
            var qa = ListenQueues.ForPort(a.EndPoint());
            var qb = ListenQueues.ForPort((IPEndPoint)b.LocalEndPoint!);
            var both = ListenQueues.ForPort(a.Port());
            var ss = Tool.Ss("-ltnH", $"sport = :{a.Port()}").ToDictionary(l => l.Local);
            Assert.Equal((ss[$"127.0.0.1:{a.Port()}"].RecvQ, ss[$"127.0.0.1:{a.Port()}"].SendQ), (qa.AcceptQueue, qa.AcceptLimit));
            Assert.Equal((ss[$"127.0.0.2:{a.Port()}"].RecvQ, ss[$"127.0.0.2:{a.Port()}"].SendQ), (qb.AcceptQueue, qb.AcceptLimit));
            Assert.Equal((0, 2, 1), (qa.AcceptQueue, qa.AcceptLimit, qa.Listeners));
            Assert.Equal((1, 6, 1), (qb.AcceptQueue, qb.AcceptLimit, qb.Listeners));
            Assert.Equal((1, 8, 2), (both.AcceptQueue, both.AcceptLimit, both.Listeners));
        }
    }
}

public class DualStackListenQueuesTests
{
    /// <summary>A wildcard IPv6 listener is dual-stack: IPv4 and IPv6 clients' request sockets both count in its SYN queue.</summary>
    [Fact]
    public void ADualStackListenersSynQueueCountsBothFamilies()
    {
        Assert.SkipUnless(System.Net.Sockets.Socket.OSSupportsIPv6 && Interfaces.Find("lo")?.Addresses.Contains(IPAddress.IPv6Loopback) == true, "no ::1 on lo");
        using var listener = TestSockets.Listen(backlog: 16, IPAddress.IPv6Any, deferAcceptSeconds: 10);
        int port = listener.Port();
        var clients = new List<System.Net.Sockets.Socket>
        {
            TestSockets.StartConnect(new IPEndPoint(IPAddress.Loopback, port)),
            TestSockets.StartConnect(new IPEndPoint(IPAddress.Loopback, port)),
            TestSockets.StartConnect(new IPEndPoint(IPAddress.IPv6Loopback, port)),
        };
        try
        {
            Assert.True(Eventually.Holds(() => ListenQueues.ForPort(port).SynQueue == 3),
                ListenQueues.ForPort(port) + "\n" + SocketTable.ForPort(port) + "\nss:\n" + Tool.Run("ss", "-tanH", $"( sport = :{port} or dport = :{port} )"));
            var byAddress = ListenQueues.ForPort(listener.EndPoint());
            var ss = Tool.Ss("-tanH", "state", "syn-recv", $"( sport = :{port} )");
            Assert.Equal((3, 1), (byAddress.SynQueue, byAddress.Listeners));
            Assert.Equal(ss.Count, byAddress.SynQueue);
            // The IPv4 clients' request sockets are AF_INET6 with ::ffff: addresses, as the listener is.
            var rows = SocketTable.ForPort(port).InState(TcpState.NewSynRecv);
            Assert.Equal(ss.Select(l => l.Local).Order(), rows.Select(r => SocketRow.FormatEndPoint(r.Local, false)).Order());
            Assert.Equal(2, rows.Count(r => r.Local.Address.IsIPv4MappedToIPv6));
        }
        finally { TestSockets.DisposeAll(clients); }
    }
}
