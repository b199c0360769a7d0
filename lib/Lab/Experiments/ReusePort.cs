using Lab.Display;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Lab.Charts;
using Lab.Hosts;
using Lab.Interop;
using Lab.Load;
using Lab.Observe;
using Lab.Sockets;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>
/// One shard stops accepting while load keeps arriving: its accept queue and every shard's, sampled every 20 ms and
/// redrawn live, with the counters of the namespace it ran in.
/// </summary>
public sealed class StalledShard
{
    StalledShard(int shards, int backlog, int paused, IReadOnlyList<QueueSample> samples, IReadOnlyList<long> acceptedDuring,
        long acceptedAfterResume, LoadResult load, CounterDelta counters)
    {
        Shards = shards; Backlog = backlog; PausedShard = paused; Samples = samples; AcceptedDuringStall = acceptedDuring;
        AcceptedAfterResume = acceptedAfterResume; Load = load; Counters = counters;
    }

    public int Shards { get; }
    public int Backlog { get; }
    public int PausedShard { get; }
    /// <summary>Every shard's accept queue over the run (Listener is the shard).</summary>
    public IReadOnlyList<QueueSample> Samples { get; }
    /// <summary>Connections each shard accepted while the paused one was paused.</summary>
    public IReadOnlyList<long> AcceptedDuringStall { get; }
    /// <summary>Connections the paused shard accepted from its queue once resumed.</summary>
    public long AcceptedAfterResume { get; }
    /// <summary>What the clients saw.</summary>
    public LoadResult Load { get; }
    /// <summary>The counters that changed in the namespace during the run (ListenOverflows, ListenDrops...).</summary>
    public CounterDelta Counters { get; }

    /// <summary>The largest queue each shard reached.</summary>
    public IReadOnlyList<int> PeakQueue => Enumerable.Range(0, Shards).Select(i => Samples.Where(s => s.Listener == i).Select(s => s.Length).DefaultIfEmpty().Max()).ToList();

    /// <summary>The mean queue length of each shard over the samples.</summary>
    public IReadOnlyList<double> MeanQueue => Enumerable.Range(0, Shards).Select(i => Samples.Where(s => s.Listener == i).Select(s => (double)s.Length).DefaultIfEmpty().Average()).ToList();

    /// <summary>One row per shard: paused or not, connections accepted during the stall, the queue's peak and mean.</summary>
    public IReadOnlyList<ShardRow> Table() => Enumerable.Range(0, Shards)
        .Select(i => new ShardRow(i, i == PausedShard, AcceptedDuringStall[i], PeakQueue[i], Math.Round(MeanQueue[i], 2), Limit)).ToList();

    /// <summary>The accept queues' limit (the backlog, as the kernel reports it).</summary>
    public int Limit => Samples.Count == 0 ? Backlog : Samples[0].Limit;

    /// <summary>
    /// Runs it in <paramref name="host"/> (a namespace of its own, so the counters are this run's alone; null runs in this
    /// namespace): <paramref name="shards"/> shards with <paramref name="backlog"/>, shard <paramref name="pausedShard"/>
    /// paused, <paramref name="rate"/> new connections per second for <paramref name="duration"/> (at most 10 s). Then
    /// the shard is resumed and its queue drained (at most 3 s).
    /// </summary>
    public static StalledShard Run(NetHost? host, int shards = 4, int backlog = 8, int pausedShard = 1, double rate = 200,
        TimeSpan? duration = null, Action<object>? update = null)
    {
        var d = duration ?? TimeSpan.FromSeconds(3);
        if (shards is < 2 or > 16) throw new ArgumentOutOfRangeException(nameof(shards), shards, "Use 2 to 16 shards.");
        if ((uint)pausedShard >= (uint)shards) throw new ArgumentOutOfRangeException(nameof(pausedShard), pausedShard, $"Pause one of shards 0 to {shards - 1}.");
        if (backlog is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(backlog), backlog, "Use a backlog of 1 to 1024 so the queue can fill within the run.");
        if (rate is < 10 or > 2000) throw new ArgumentOutOfRangeException(nameof(rate), rate, "Use 10 to 2000 connections/s.");
        if (d <= TimeSpan.Zero || d > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(duration), d, "Run for more than 0 and at most 10 s.");
        StalledShard Work()
        {
            using var t = new ReusePortShards(new TopologyOptions { Workers = shards, Backlog = backlog, RequestEvents = false });
            t.Start();
            t.PauseShard(pausedShard);
            var before = NetCounters.Read();
            var accepted0 = Accepted(t);
            // Clients stuck behind the full queue hold a connection until their connect times out: give the open loop
            // a slot per request so the stalled shard's clients never hold up the others'.
            var options = new LoadOptions
            {
                Target = Endpoints.Format(t.LocalEndPoint), Rate = rate, KeepAlive = false, Duration = d,
                Connections = (int)Math.Min(LoadOptions.MaxConnections, Math.Ceiling(rate * d.TotalSeconds) + 16),
                ConnectTimeout = d + TimeSpan.FromSeconds(1), RequestTimeout = d + TimeSpan.FromSeconds(1),
            };
            LoadResult? load = null;
            Exception? failure = null;
            var loader = new Thread(() =>
            {
                try { load = LoadGenerator.Run(options); }
                catch (Exception e) { failure = e; }
            }) { IsBackground = true, Name = "lab-stall load" };
            // Every shard's accept queue every 20 ms on the lab's one sampler, redrawn live twice a second.
            var queues = LiveChart.Start(() => t.ShardQueues(), s => ChartOf(Flatten(s), shards, pausedShard), update,
                every: TimeSpan.FromMilliseconds(20), atMost: d + TimeSpan.FromSeconds(20), redrawEvery: TimeSpan.FromMilliseconds(500));
            List<QueueSample> samples;
            try
            {
                loader.Start();
                loader.Join(d + TimeSpan.FromSeconds(20));
            }
            finally
            {
                queues.Stop();   // the last frame
                samples = Flatten(queues.Samples);
                queues.Dispose();
            }
            if (failure is not null) throw new InvalidOperationException("The load run failed: " + failure.Message, failure);
            if (load is null) throw new TimeoutException("The load run did not finish in time.");
            var counters = before.Diff(NetCounters.Read());
            var accepted1 = Accepted(t);
            t.ResumeShard(pausedShard);
            var resumeBy = Stopwatch.StartNew();
            while (t.ShardQueues()[pausedShard].Length > 0 && resumeBy.Elapsed < TimeSpan.FromSeconds(3)) Thread.Sleep(10);
            var accepted2 = Accepted(t);
            var result = new StalledShard(shards, backlog, pausedShard, samples, accepted1.Zip(accepted0, (a, b) => a - b).ToList(),
                accepted2[pausedShard] - accepted1[pausedShard], load, counters);
            return result;
        }
        return host is null ? Work() : host.Run(Work);
    }

    static List<QueueSample> Flatten(IReadOnlyList<Sample<IReadOnlyList<AcceptQueueReading>>> readings) =>
        readings.SelectMany(r => r.Value.Select((q, i) => new QueueSample(r.Elapsed, i, q.Length, q.Limit))).ToList();

    static IReadOnlyList<long> Accepted(ReusePortShards t) => t.Metrics.Workers.OrderBy(w => w.Index).Select(w => w.ConnectionsAccepted).ToList();

    static Figure ChartOf(IReadOnlyList<QueueSample> samples, int shards, int paused)
    {
        var series = Enumerable.Range(0, shards)
            .Select(i => Series.From(i == paused ? $"shard {i} (paused)" : $"shard {i}", samples.Where(s => s.Listener == i), s => s.At.TotalSeconds, s => s.Length))
            .ToList();
        var first = samples.Where(s => s.Listener == 0).ToList();
        if (first.Count > 0) series.Add(new Series("limit (backlog; full above it)", [first[0].At.TotalSeconds, first[^1].At.TotalSeconds], [first[0].Limit, first[0].Limit]));
        return LabCharts.TimeSeries("Each shard's accept queue while one shard is paused", "connections waiting", series.ToArray());
    }

    /// <summary>Every shard's accept queue over the run, with the limit.</summary>
    public Figure Chart() => ChartOf(Samples, Shards, PausedShard);
}

/// <summary>One shard's row in a <see cref="StalledShard"/> run.</summary>
public sealed record ShardRow(int Shard, bool Paused, long Accepted, int PeakQueue, double MeanQueue, int Limit);

/// <summary>What became of the connections queued on a shard whose listening socket was closed.</summary>
/// <param name="MigrateRequests">net.ipv4.tcp_migrate_req during the run (in the namespace it ran in).</param>
/// <param name="Clients">Clients connected, each with a request sent.</param>
/// <param name="Queued">Connections waiting in the closed shard's accept queue when it closed.</param>
/// <param name="AcceptedByOthers">Connections the other shards accepted after the close.</param>
/// <param name="Answered">Clients that read a 200 response (before or after the close).</param>
/// <param name="Reset">Clients whose read failed with ECONNRESET.</param>
/// <param name="ClosedWithoutAnswer">Clients that read end-of-stream without a response.</param>
/// <param name="NoAnswer">Clients with nothing to read within the wait.</param>
/// <param name="Counters">Counters that changed in the namespace from the close on (TCPMigrateReqSuccess, Tcp.OutRsts...).</param>
public sealed record ClosedShard(bool MigrateRequests, int Clients, int Queued, long AcceptedByOthers, int Answered, int Reset,
    int ClosedWithoutAnswer, int NoAnswer, CounterDelta Counters)
{
    /// <summary>
    /// Runs it in <paramref name="host"/> with net.ipv4.tcp_migrate_req set to <paramref name="migrate"/> there (in a scope
    /// that restores it before returning): <paramref name="shards"/> shards, the last one paused, <paramref name="clients"/>
    /// clients that connect and send a request, then the paused shard's listening socket is closed and each client's
    /// outcome read (at most 3 s).
    /// </summary>
    public static ClosedShard Run(NetHost host, bool migrate, int shards = 2, int clients = 40)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (shards is < 2 or > 16) throw new ArgumentOutOfRangeException(nameof(shards), shards, "Use 2 to 16 shards.");
        if (clients is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(clients), clients, "Use 1 to 1000 clients.");
        return host.Run(() =>
        {
            using var scope = Sysctl.Set("net.ipv4.tcp_migrate_req", migrate ? 1 : 0);
            int closing = shards - 1;
            using var t = new ReusePortShards(new TopologyOptions { Workers = shards, Backlog = Math.Max(128, clients), RequestEvents = false });
            t.Start();
            t.PauseShard(closing);
            using var group = Lab.Sockets.Clients.Open(t.LocalEndPoint, clients);
            Wait(() => group.CountIn(TcpState.Established) == clients, "every client to connect");
            var request = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n");
            foreach (var c in group) c.WriteAll(request, TimeSpan.FromSeconds(2));
            long Others() => t.Metrics.Workers.Where(w => w.Index != closing).Sum(w => w.ConnectionsAccepted);
            Wait(() => Others() + t.ShardQueues()[closing].Length == clients, "every connection to be accepted or queued");
            int queued = t.ShardQueues()[closing].Length;
            long othersBefore = Others();
            var before = NetCounters.Read();
            t.CloseShard(closing);
            var outcome = new IoKind?[clients];
            var answered = new bool[clients];
            var buffer = new byte[4096];
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(3) && outcome.Any(o => o is null))
            {
                for (int i = 0; i < clients; i++)
                {
                    if (outcome[i] is not null) continue;
                    var r = group[i].Read(buffer);
                    if (r.IsWouldBlock) continue;
                    if (r.IsData) { answered[i] |= Encoding.ASCII.GetString(buffer, 0, Math.Min(r.Bytes, 12)).StartsWith("HTTP/1.1 200", StringComparison.Ordinal); continue; }
                    outcome[i] = r.Kind;
                }
                Thread.Sleep(10);
            }
            var counters = before.Diff(NetCounters.Read());
            return new ClosedShard(migrate, clients, queued, Others() - othersBefore, answered.Count(a => a),
                outcome.Count(o => o == IoKind.Reset), Enumerable.Range(0, clients).Count(i => outcome[i] == IoKind.EndOfStream && !answered[i]),
                outcome.Count(o => o is null), counters);
        });
    }

    static void Wait(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(5)) throw new TimeoutException($"Waited 5 s for {what}.");
            Thread.Sleep(10);
        }
    }
}
