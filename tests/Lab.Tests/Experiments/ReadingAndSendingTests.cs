using Lab.Experiments;
using Lab.Hosts;

namespace Lab.Tests.Experiments;

[Collection(nameof(TimingCollection))]
public class ReadingAndSendingTests
{
    [Fact]
    public void WhenTheReaderStallsRecvQPlateausTheWindowReachesZeroAndReopens()
    {
        var frames = 0;
        var r = FillExperiment.Run(new FillOptions { StallFor = TimeSpan.FromMilliseconds(600), TotalBytes = 128 * 1024, Capture = false },
            _ => Interlocked.Increment(ref frames));
        Assert.Equal(32768, r.ReaderReceiveBuffer);                 // 16 KiB asked, doubled
        Assert.InRange(r.RecvQPlateau, 4096, r.ReaderReceiveBuffer);
        Assert.True(r.SendQPlateau > 0, "send queue " + r.SendQPlateau);
        Assert.Equal(0, r.MinWindowWhileStalled);
        Assert.NotNull(r.ZeroWindowAt);
        Assert.True(r.FirstWouldBlockAt < r.ReadingResumedAt);
        Assert.True(r.WouldBlockCount > 0);
        Assert.True(r.MaxWindowAfterResume > 0);
        Assert.Equal(128 * 1024, r.TotalRead);
        // The plateau holds while stalled: the last stalled reading equals the peak.
        Assert.Equal(r.PeakRecvQ, r.RecvQPlateau);
        Assert.True(frames >= 1);
        Assert.Contains("reader Recv-Q", r.Chart().ToJson());
    }

    [Fact]
    public void AReadRemovesExactlyWhatItCopied()
    {
        var (l, clients, accepted) = ReadingAndSending.ConnectionsThatSent(3000);
        try
        {
            var a = ReadingAndSending.ReadOnce(accepted[0], 1000);
            var b = ReadingAndSending.ReadOnce(accepted[0], 5000);
            Assert.Equal(new ReadStep(3000, 1000, 1000, 2000), a);
            Assert.Equal(new ReadStep(2000, 5000, 2000, 0), b);
        }
        finally
        {
            foreach (var c in clients.Concat(accepted)) c.Dispose();
            l.Dispose();
        }
    }

    [Fact]
    public void ABlockingWriteWaitsForTheReader()
    {
        var r = ReadingAndSending.BlockedWrite(TimeSpan.FromMilliseconds(300));
        Assert.InRange(r.WriteBlockedMs, 240, 2000);
        Assert.Equal("Data(1024 bytes)", r.WriteResult);
        Assert.True(r.RecvQ > 0 && r.SendQ > 0);
    }

    [Fact]
    public void NagleStallsWriteWriteReadAndCorkOrNoDelayDoNot()
    {
        var o = new WriteWriteReadOptions { Iterations = 12 };
        var nagle = WriteWriteRead.Run(SendMode.Nagle, o);
        var cork = WriteWriteRead.Run(SendMode.Cork, o);
        var nodelay = WriteWriteRead.Run(SendMode.NoDelay, o);
        Assert.InRange(nagle.Median, 30, 250);
        Assert.True(nodelay.Median < 10 && cork.Median < 10, $"nodelay {nodelay.Median}, cork {cork.Median}");
    }

    [Fact]
    public void CorkSendsARequestAsOneSegmentAndNagleAsTwo()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetRaw), "the segments are counted in a packet capture, which needs CAP_NET_RAW (run as root)");
        var o = new WriteWriteReadOptions { Iterations = 12 };
        var nagle = WriteWriteRead.Run(SendMode.Nagle, o);
        var cork = WriteWriteRead.Run(SendMode.Cork, o);
        Assert.Equal(1.0, cork.RequestSegmentsPerRequest);
        // Under CPU contention a request's two writes occasionally coalesce (the header was not yet sent when the body
        // came); the property is that most requests leave as two segments.
        Assert.InRange(nagle.RequestSegmentsPerRequest, 1.5, 2.0);
        var rows = cork.Rows(5);
        Assert.Contains(rows, x => x.Direction == "client → server" && x.Bytes == 240);
        Assert.Contains(rows, x => x.Direction == "server → client" && x.Bytes == 100);
        var n = Enumerable.Range(1, o.Iterations - 1).Select(nagle.Rows)
            .First(r => r.Count(x => x.Direction == "client → server" && x.Bytes > 0) == 2);
        Assert.Equal([40, 200], n.Where(x => x.Direction == "client → server" && x.Bytes > 0).Select(x => x.Bytes));
        Assert.Contains(n, x => x.Direction == "server → client" && x.Bytes == 0 && x.Ms >= 30);
    }

    [Fact]
    public void SmallWritesOnAnIdleConnectionLeaveAtOnce()
    {
        var r = ReadingAndSending.IdleWrites(writes: 5, idleGap: TimeSpan.FromMilliseconds(10));
        Assert.True(r.Nagle);
        Assert.True(r.MedianMicros < 10_000, "median µs " + r.MedianMicros);
        if (r.Captured) Assert.Equal(5, r.DataSegments.Count);
    }

    [Fact]
    public void PercentilesInterpolate()
    {
        Assert.Equal(2, Stats.Percentile([4, 1, 3, 2], 50));   // nearest rank: a measured value, never between two
        Assert.Equal(4, Stats.Percentile([4, 1, 3, 2], 99));
        Assert.Equal(1, Stats.Percentile([4, 1, 3, 2], 0));
        Assert.Equal(4, Stats.Percentile([4, 1, 3, 2], 100));
        Assert.True(double.IsNaN(Stats.Percentile([], 50)));
    }
}
