using System.Diagnostics;
using Lab.Observe;

namespace Lab.Tests.Observe;

/// <summary>Samplers run alone so the count of sampler threads can return to zero.</summary>
[CollectionDefinition(nameof(SamplerCollection), DisableParallelization = true)]
public sealed class SamplerCollection;

[Collection(nameof(SamplerCollection))]
public class SamplerTests(ITestOutputHelper output)
{
    /// <summary>OS threads named like the sampler's (Linux keeps the first 15 characters of a .NET thread's name).</summary>
    static int SamplerThreads() =>
        Directory.GetDirectories("/proc/self/task").Count(t =>
        {
            try { return File.ReadAllText(Path.Combine(t, "comm")).Trim() == "Lab sampler"; }
            catch (IOException) { return false; } // the thread ended while we looked
        });

    static void AssertNoSamplerThreadLeft() =>
        Assert.True(Eventually.Holds(() => SamplerThreads() == 0, TimeSpan.FromSeconds(5)), $"{SamplerThreads()} sampler threads still running");

    [Fact]
    public void OneMillisecondSamplingCollectsAPlausibleCountAndStopsOnDispose()
    {
        int calls = 0;
        var sampler = Sampler.Start(TimeSpan.FromMilliseconds(1), () => Interlocked.Increment(ref calls));
        Thread.Sleep(300);
        var sw = Stopwatch.StartNew();
        sampler.Dispose();
        var stopTook = sw.Elapsed;
        int count = sampler.Count;
        output.WriteLine($"{count} samples in ~300 ms, mean interval {sampler.MeanInterval.TotalMicroseconds:0} µs, Dispose took {stopTook.TotalMilliseconds:0.0} ms");
        Assert.InRange(count, 100, 400);
        Assert.False(sampler.IsRunning);
        Assert.Equal("stopped", sampler.EndedBy);
        Assert.True(stopTook < TimeSpan.FromMilliseconds(500), $"Dispose took {stopTook}");
        Thread.Sleep(20);
        Assert.Equal(count, sampler.Count);
        Assert.Equal(count, Volatile.Read(ref calls));
        var s = sampler.Samples;
        Assert.True(s.Zip(s.Skip(1)).All(p => p.Second.Elapsed >= p.First.Elapsed));
        Assert.Equal(Enumerable.Range(1, count), s.Select(x => x.Value));
        sampler.Dispose(); // idempotent
        AssertNoSamplerThreadLeft();
    }

    [Fact]
    public void MaxDurationAndMaxSamplesBoundIt()
    {
        using var byTime = Sampler.Start(TimeSpan.FromMilliseconds(5), () => 0, maxDuration: TimeSpan.FromMilliseconds(100));
        using var byCount = Sampler.Start(TimeSpan.FromMilliseconds(1), () => 0, maxSamples: 10);
        Assert.True(Eventually.Holds(() => !byTime.IsRunning && !byCount.IsRunning, TimeSpan.FromSeconds(5)));
        Assert.Equal("maxDuration", byTime.EndedBy);
        Assert.InRange(byTime.Count, 1, 25);
        Assert.Equal("maxSamples", byCount.EndedBy);
        Assert.Equal(10, byCount.Count);
        AssertNoSamplerThreadLeft();
    }

    [Fact]
    public void AnExceptionInReadStopsItAndIsKept()
    {
        int n = 0;
        using var sampler = Sampler.Start(TimeSpan.FromMilliseconds(1), () => ++n < 5 ? n : throw new InvalidOperationException("boom"));
        Assert.True(Eventually.Holds(() => !sampler.IsRunning));
        Assert.Equal("error", sampler.EndedBy);
        Assert.Equal("boom", Assert.IsType<InvalidOperationException>(sampler.Error).Message);
        Assert.Equal(4, sampler.Count);
        AssertNoSamplerThreadLeft();
    }

    [Fact]
    public void OnSampleSeesEverySampleAndLongIntervalsStillStopPromptly()
    {
        var seen = new List<int>();
        using (var sampler = Sampler.Start(TimeSpan.FromMilliseconds(2), () => seen.Count))
        {
            sampler.OnSample += s => { lock (seen) seen.Add(s.Value); };
            Assert.True(Eventually.Holds(() => { lock (seen) return seen.Count >= 5; }));
        }
        var slow = Sampler.Start(TimeSpan.FromSeconds(30), () => 1);
        Assert.True(Eventually.Holds(() => slow.Count == 1));
        var sw = Stopwatch.StartNew();
        slow.Dispose();
        Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(200), $"stopping a 30 s sampler took {sw.Elapsed}");
        Assert.Throws<ArgumentOutOfRangeException>(() => Sampler.Start(TimeSpan.FromMicroseconds(500), () => 1));
        AssertNoSamplerThreadLeft();
    }

    [Fact]
    public void SamplingAListenersQueuesAgreesWithSsAndReleasesItsSocket()
    {
        using var listener = TestSockets.Listen(backlog: 5);
        var ep = listener.EndPoint();
        int trackedBefore = LabResources.Count().GetValueOrDefault("Sampler");
        var clients = new List<System.Net.Sockets.Socket>();
        try
        {
            using var sampler = ListenQueues.Sample(ep.Port, TimeSpan.FromMilliseconds(1), ep.Address, includeSynQueue: false);
            Assert.Equal(trackedBefore + 1, LabResources.Count().GetValueOrDefault("Sampler"));
            Assert.True(Eventually.Holds(() => sampler.Count > 0)); // a reading of the empty queue first
            for (int i = 0; i < 3; i++) clients.Add(TestSockets.StartConnect(ep));
            Assert.True(Eventually.Holds(() => sampler.Samples is { Count: > 0 } s && s[^1].Value.AcceptQueue == 3));
            var ss = Assert.Single(Tool.Ss("-ltnH", $"sport = :{ep.Port}"));
            var last = sampler.Samples[^1].Value;
            Assert.Equal((ss.RecvQ, ss.SendQ), (last.AcceptQueue, last.AcceptLimit));
            Assert.Equal(-1, last.SynQueue);
            Assert.Contains(sampler.Samples, s => s.Value.AcceptQueue == 0); // it saw the queue fill
            sampler.Dispose();
            Assert.Null(sampler.Error);
            Assert.Equal(trackedBefore, LabResources.Count().GetValueOrDefault("Sampler"));
        }
        finally { TestSockets.DisposeAll(clients); }
        AssertNoSamplerThreadLeft();
    }
}
