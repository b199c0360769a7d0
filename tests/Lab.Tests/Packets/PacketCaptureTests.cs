using Lab.Experiments;
using Lab.Hosts;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Tests.Packets;

public class PacketCaptureTests
{

    /// <summary>
    /// Segments that reached the capture socket before Dispose are in the capture, even when the capture thread is
    /// behind (as on a busy machine): Dispose drains the socket instead of dropping what it holds.
    /// </summary>
    [Fact]
    public async Task StoppingACaptureThatIsBehindKeepsTheSegmentsThatAlreadyArrived()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetRaw), "needs CAP_NET_RAW (run as root)");
        using var pair = ConnectedPair.Open();
        var (listener, client, server) = (pair.Listener, pair.Client, pair.Server);
        client.NoDelay = true;
        var capture = PacketCapture.Start(listener.Port);
        using var held = new ManualResetEventSlim();
        capture.OnSegment += _ => held.Wait(TimeSpan.FromSeconds(5));   // the capture thread stalls on its first segment
        const int writes = 5;
        for (int i = 0; i < writes; i++)
        {
            client.Write(new byte[10]);
            server.ReadExactly(new byte[10], TimeSpan.FromSeconds(2));
        }
        // Every segment is in the capture socket now; release the thread and stop at once.
        var stopping = Task.Run(capture.Dispose, TestContext.Current.CancellationToken);
        Assert.True(Eventually.Holds(() => capture.Stopping), "Dispose did not ask the capture thread to stop");
        held.Set();
        Assert.True(await stopping.CompletesWithin(TimeSpan.FromSeconds(5)));
        var data = capture.Segments.Where(s => s.Source.Equals(client.LocalEndPoint) && s.PayloadLength > 0).ToList();
        Assert.Equal(writes, data.Count);
        Assert.Null(capture.Error);
    }

    /// <summary>
    /// A capture of one port keeps every one of its segments while another connection floods lo: the kernel filters
    /// (a BPF program on the socket), so the flood never fills the capture's buffer. Without the filter, a Nagle run
    /// beside a soak on lo counted 17 of its 24 request segments.
    /// </summary>
    [Fact]
    public async Task AFloodOnAnotherPortNeitherReachesNorCrowdsOutTheCapture()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetRaw), "needs CAP_NET_RAW (run as root)");
        using var pair = ConnectedPair.Open();
        var (listener, client, server) = (pair.Listener, pair.Client, pair.Server);
        client.NoDelay = true;
        using var floodPair = ConnectedPair.Open();
        var (floodClient, floodServer) = (floodPair.Client, floodPair.Server);
        using var capture = PacketCapture.Start(listener.Port, maxDuration: TimeSpan.FromSeconds(30));
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));   // bounded: 5 s at most
        long flooded = 0;
        bool exchanged = false;                                                  // the flood goes on until the exchanges are over
        var sink = Task.Factory.StartNew(() => { var b = new byte[1 << 20]; while (floodServer.Read(b).IsData) { } }, TaskCreationOptions.LongRunning);
        var flood = Task.Factory.StartNew(() =>
        {
            var b = new byte[1 << 20];
            while (!stop.IsCancellationRequested && !(Volatile.Read(ref exchanged) && Volatile.Read(ref flooded) >= 256L << 20)) Interlocked.Add(ref flooded, floodClient.WriteAll(b, TimeSpan.FromSeconds(5)).Bytes);
            floodClient.Dispose();                                             // the sink reads end of stream and stops
        }, TaskCreationOptions.LongRunning);
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref flooded) > 32 << 20, TimeSpan.FromSeconds(5)), "the flood did not start");
        const int writes = 200;
        for (int i = 0; i < writes; i++)
        {
            client.Write(new byte[10]);
            server.ReadExactly(new byte[10], TimeSpan.FromSeconds(2));
        }
        Volatile.Write(ref exchanged, true);
        Assert.True(await Task.WhenAll(flood, sink).CompletesWithin(TimeSpan.FromSeconds(10)), "the flood did not stop");
        Window.Of(TimeSpan.FromMilliseconds(50), "the exchanges' last ACKs reach the capture socket before it stops");
        capture.Dispose();
        var segments = capture.Segments;
        Assert.All(segments, s => Assert.True(s.Source.Port == listener.Port || s.Destination.Port == listener.Port, $"a segment of another port: {s}"));
        Assert.Equal(0, capture.Dropped);
        Assert.Equal(writes, segments.Count(s => s.Source.Equals(client.LocalEndPoint) && s.PayloadLength > 0));
        Assert.True(flooded >= 256 << 20, $"the flood wrote only {flooded} bytes");
        Assert.Null(capture.Error);
    }
}
