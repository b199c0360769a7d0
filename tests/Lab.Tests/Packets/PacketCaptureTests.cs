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
    public void StoppingACaptureThatIsBehindKeepsTheSegmentsThatAlreadyArrived()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetRaw), "needs CAP_NET_RAW (run as root)");
        using var listener = Listener.Open("127.0.0.1:0");
        using var client = Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(2));
        using var server = ((AcceptResult.Accepted)listener.Accept(TimeSpan.FromSeconds(2))).Connection;
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
        var stopping = Task.Run(capture.Dispose);
        Thread.Sleep(200);                                                // Dispose has set its stop flag and waits in Join
        held.Set();
        Assert.True(stopping.Wait(TimeSpan.FromSeconds(5)));
        var data = capture.Segments.Where(s => s.Source.Equals(client.LocalEndPoint) && s.PayloadLength > 0).ToList();
        Assert.Equal(writes, data.Count);
        Assert.Null(capture.Error);
    }
}
