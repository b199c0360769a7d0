using System.CommandLine;
using System.Text.Json;
using Lab.Bench;
using Lab.Cli.Commands;
using Lab.Peers;
using LockedWriter = Lab.Tests.Topologies.CliCommandTests.LockedWriter;

namespace Lab.Tests.Bench;

/// <summary>The benchmark's short form end to end, as CI runs it: every row present, every figure measured.</summary>
public class BenchTests
{
    [Fact]
    public void ShortRunWritesATableAndJsonWithEveryRowMeasured()
    {
        Assert.SkipUnless(Nginx.Installed && Wrk.Installed, "nginx or wrk is not installed (apt-get install -y nginx wrk)");
        var dir = Directory.CreateTempSubdirectory("lab-bench-test-").FullName;
        try
        {
            var (o, e) = (new LockedWriter(), new LockedWriter());
            var root = new RootCommand("lab") { BenchCommand.Create() };
            // ReusePortShards at 1 and 2 workers covers nginx with and without reuseport and both worker counts.
            int code = root.Parse($"bench --short --only ReusePortShards --out {dir}").Invoke(new InvocationConfiguration { Output = o, Error = e });
            Assert.True(code == 0, o + e.ToString());

            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "latest.json")));
            var rows = json.RootElement.GetProperty("rows").EnumerateArray().ToList();
            var expected = new (string Part, string Mode, int Workers)[]
            {
                ("throughput", "keep-alive", 1), ("throughput", "close", 1), ("throughput", "keep-alive", 2), ("throughput", "close", 2),
                ("load generator", "keep-alive", 2), ("load generator", "close", 2), ("p99 at half rate", "keep-alive", 2),
                ("sampler cost", "keep-alive", 2), ("sampler cost", "keep-alive", 2),
            };
            // A model whose own keep-alive peak came out below 0.8x nginx's in this one short round also gets a p99 row at half
            // its own peak, right after its half-nginx row; whether it does depends on the round, so it is checked, not counted.
            var own = rows.Where(r => r.GetProperty("Part").GetString() == "p99 at half own rate").ToList();
            Assert.True(own.Count <= 1, $"{own.Count} own-rate rows");
            foreach (var r in own) Assert.Contains("half the lab side's own peak", r.GetProperty("Note").GetString());
            Assert.Equal(expected, rows.Where(r => r.GetProperty("Part").GetString() != "p99 at half own rate").Select(r => (r.GetProperty("Part").GetString()!, r.GetProperty("Mode").GetString()!, r.GetProperty("Workers").GetInt32())).ToArray());
            foreach (var r in rows)
            {
                var a = r.GetProperty("LabValues").EnumerateArray().Select(v => v.GetDouble()).ToList();
                var b = r.GetProperty("PeerValues").EnumerateArray().Select(v => v.GetDouble()).ToList();
                Assert.Single(a);
                Assert.Single(b);
                Assert.True(a[0] > 0 && b[0] > 0 && r.GetProperty("Ratio").GetDouble() > 0, r.ToString());
            }
            Assert.True(json.RootElement.GetProperty("machine").GetProperty("Cores").GetInt32() > 0);

            var md = File.ReadAllLines(Path.Combine(dir, "latest.md"));
            Assert.StartsWith("Measured ", md[0]);
            var table = md.Where(l => l.StartsWith("| ") && !l.StartsWith("| part")).ToList();
            Assert.Equal(rows.Count, table.Count);
            Assert.All(table, l => Assert.Matches(@"\| \d+\.\d\d \[", l)); // a ratio with its range in every row
            // One progress line per pair while it ran, before the table.
            Assert.Equal(rows.Count, o.ToString().Split('\n').Count(l => !l.StartsWith("|") && l.Contains(" ratio ") && l.Contains(" target ")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("1,x")]
    [InlineData("300")]
    [InlineData(",")]
    public void ABadWorkerListIsRefusedBeforeAnythingRuns(string workers)
    {
        var (o, e) = (new LockedWriter(), new LockedWriter());
        var root = new RootCommand("lab") { BenchCommand.Create() };
        int code = root.Parse(["bench", "--workers", workers]).Invoke(new InvocationConfiguration { Output = o, Error = e });
        Assert.Equal(2, code);
        Assert.Contains("--workers", e.ToString());
        Assert.Contains("e.g. 1,2,4", e.ToString());
        Assert.DoesNotContain("round(s)", o.ToString()); // refused before the run began
    }

    [Fact]
    public void MediansAndNginxConfigurationsMatchTheModels()
    {
        Assert.Equal(2, Benchmark.Median([3, 1, 2]));
        Assert.Equal(2, Benchmark.Median([4, 1, 2, 3]));   // nearest rank, as every percentile in the lab
        Assert.Equal(new NginxOptions { Workers = 1, Backlog = 511 }, Benchmark.NginxFor("SingleThreadLoop", 2));
        Assert.Equal(new NginxOptions { Workers = 2, ReusePort = true, Backlog = 511 }, Benchmark.NginxFor("ReusePortShards", 2));
        Assert.Equal(new NginxOptions { Workers = 2, AcceptMutex = true, Backlog = 511 }, Benchmark.NginxFor("SharedSocketAcceptors/AcceptMutex", 2));
        Assert.Equal(new NginxOptions { Workers = 1, Backlog = 511 }, Benchmark.NginxFor("SharedSocketAcceptors/EpollExclusive", 1));
        var row = new BenchRow
        {
            Part = "throughput", Lab = "x", Peer = "nginx", Workers = 1, Mode = "keep-alive", Unit = "req/s",
            LabValues = [80, 90, 100], PeerValues = [100, 100, 100], Target = 0.8, HigherIsBetter = true,
        };
        Assert.Equal(0.9, row.Ratio, 3);
        Assert.True(row.Met);
        Assert.False((row with { LabValues = [70, 75, 90] }).Met);
    }
}
