using System.Net;
using Lab.Sockets;
using Lab.Topologies;

namespace Lab.Tests.Topologies;

[Collection(nameof(TimingCollection))]
public class QueueSamplerTests
{
    /// <summary>A topology whose accept-queue reading takes 4 ms, like a sock_diag dump on a busy machine.</summary>
    sealed class SlowReadings : ITopology
    {
        public string Name => "slow readings";
        public IPEndPoint LocalEndPoint => new(IPAddress.Loopback, 1);
        public void Start() { }
        public void Dispose() { }
        public StopReport Stop(TimeSpan timeout) => throw new NotSupportedException();
        public TopologyMetrics Metrics => throw new NotSupportedException();
        public TopologyEvents Events => throw new NotSupportedException();
        public IReadOnlyList<AcceptQueueReading> AcceptQueues()
        {
            Thread.Sleep(4);
            return [new AcceptQueueReading(0, 8)];
        }
    }

    /// <summary>
    /// Samples keep to their schedule: every 10 ms means about 100 in a second even when each reading takes 4 ms
    /// (a wait of a whole interval after each reading gave at most 1000 / 14 ≈ 71).
    /// </summary>
    [Fact]
    public void SamplesKeepToTheScheduleWhenAReadingTakesTime()
    {
        var sampler = new QueueSampler(new SlowReadings(), TimeSpan.FromMilliseconds(10));
        Thread.Sleep(1000);
        sampler.Dispose();
        var samples = sampler.Samples;
        Assert.InRange(samples.Count, 85, 110);
        // Each sample's time is on the 10 ms grid or late by at most a reading; none early.
        Assert.All(samples.Select((s, i) => (s, i)), x => Assert.True(x.s.At >= TimeSpan.FromMilliseconds(10 * x.i), $"sample {x.i} at {x.s.At}"));
    }
}
