using System.Net;
using Lab.Sockets;
using Lab.Topologies;

namespace Lab.Tests.Topologies;

[Collection(nameof(TimingCollection))]
public class QueueSamplerTests
{
    /// <summary>A topology whose accept-queue reading takes 4 ms, like a sock_diag dump on a busy machine; it times each reading.</summary>
    sealed class SlowReadings : ITopology
    {
        long _readings, _ticks;
        /// <summary>How long a reading took, on average, in wall time (a busy machine oversleeps the 4 ms).</summary>
        public TimeSpan MeanReading => TimeSpan.FromTicks(Interlocked.Read(ref _ticks) / Math.Max(1, Interlocked.Read(ref _readings)));
        public string Name => "slow readings";
        public IPEndPoint LocalEndPoint => new(IPAddress.Loopback, 1);
        public void Start() { }
        public void Dispose() { }
        public StopReport Stop(TimeSpan timeout) => throw new NotSupportedException();
        public TopologyMetrics Metrics => throw new NotSupportedException();
        public TopologyEvents Events => throw new NotSupportedException();
        public IReadOnlyList<AcceptQueueReading> AcceptQueues()
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            Thread.Sleep(4);
            Interlocked.Add(ref _ticks, System.Diagnostics.Stopwatch.GetElapsedTime(t0).Ticks);
            Interlocked.Increment(ref _readings);
            return [new AcceptQueueReading(0, 8)];
        }
    }

    /// <summary>
    /// Samples keep to their schedule: every 10 ms means about 100 in a second even when each reading takes 4 ms,
    /// where a wait of a whole interval after each reading gives at most 1000 / (10 + 4) ≈ 71. The bounds come from
    /// what the machine showed in the same second (readings overslept to 5-8 ms beside a busy suite, and a fixed
    /// 85-110 failed with 77): more than the wait-after-reading schedule could give at the measured reading time,
    /// and no more than the grid holds.
    /// </summary>
    [Fact]
    public void SamplesKeepToTheScheduleWhenAReadingTakesTime()
    {
        var source = new SlowReadings();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sampler = new QueueSampler(source, TimeSpan.FromMilliseconds(10));
        Thread.Sleep(1000);
        sampler.Dispose();
        var elapsed = clock.Elapsed;
        var samples = sampler.Samples;
        double waitAfterReading = elapsed.TotalMilliseconds / (10 + source.MeanReading.TotalMilliseconds);
        double grid = elapsed.TotalMilliseconds / 10 + 1;
        Assert.True(samples.Count > waitAfterReading * 1.15 && samples.Count <= grid,
            $"{samples.Count} samples in {elapsed.TotalMilliseconds:0} ms with readings of {source.MeanReading.TotalMilliseconds:0.0} ms: " +
            $"a wait after each reading gives {waitAfterReading:0}, the 10 ms grid holds {grid:0}");
        // Each sample's time is on the 10 ms grid or late by at most a reading; none early.
        Assert.All(samples.Select((s, i) => (s, i)), x => Assert.True(x.s.At >= TimeSpan.FromMilliseconds(10 * x.i), $"sample {x.i} at {x.s.At}"));
    }
}
