using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Hosts;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>One legitimate connect attempt during a flood.</summary>
/// <param name="At">Seconds from the start of the flood.</param>
/// <param name="Connected">Whether the handshake completed within the timeout.</param>
/// <param name="Milliseconds">How long the connect took (the timeout when it failed).</param>
public sealed record LegitAttempt(double At, bool Connected, double Milliseconds);

/// <summary>One reading of the listener's SYN queue during a flood.</summary>
public sealed record SynQueueSample(double Seconds, int SynQueue, int AcceptQueue);

/// <summary>
/// A SYN flood against a listener in a lab host, from inside the same host: a <see cref="RawTcpPeer"/> sends SYNs from
/// spoofed, unassigned addresses in the host's own /24, so the listener's SYN-ACKs go out of the host's veth to a link
/// address nobody owns (<see cref="NetHost.PinNeighboursToNowhere"/>), and are lost without a word. Legitimate clients connect from this side of the wire (the root
/// namespace) at the same time. tcp_syncookies (and, if given, tcp_max_syn_backlog) are set in the host's namespace
/// only, in scopes restored before <see cref="Run"/> returns. Bounded: at most 5,000 SYNs and 10 s.
/// </summary>
public sealed class SynFlood
{
    SynFlood(int cookies, int backlog, int sent, IReadOnlyList<SynQueueSample> queue, IReadOnlyList<LegitAttempt> legit, CounterDelta counters, long maxSynBacklog)
    { Syncookies = cookies; Backlog = backlog; SynsSent = sent; Queue = queue; Legit = legit; Counters = counters; MaxSynBacklog = maxSynBacklog; }

    public int Syncookies { get; }
    public int Backlog { get; }
    /// <summary>net.ipv4.tcp_max_syn_backlog in the host during the run.</summary>
    public long MaxSynBacklog { get; }
    public int SynsSent { get; }
    public IReadOnlyList<SynQueueSample> Queue { get; }
    public IReadOnlyList<LegitAttempt> Legit { get; }
    /// <summary>The host's counters that changed during the run.</summary>
    public CounterDelta Counters { get; }
    public int PeakSynQueue => Queue.Select(q => q.SynQueue).DefaultIfEmpty().Max();
    public int LegitConnected => Legit.Count(l => l.Connected);

    /// <summary>Spoofed source addresses: unassigned hosts .100-.199 of the lab host's /24.</summary>
    public static IReadOnlyList<IPAddress> SpoofedSources(NetHost host)
    {
        var b = host.Address.GetAddressBytes();
        return Enumerable.Range(100, 100).Select(i => new IPAddress(new[] { b[0], b[1], b[2], (byte)i })).ToList();
    }

    public static SynFlood Run(NetHost host, int syncookies, int backlog = 16, int synCount = 1000, TimeSpan? floodFor = null,
        int legitClients = 8, TimeSpan? legitTimeout = null, int? maxSynBacklog = null)
    {
        if (synCount is < 1 or > 5000) throw new ArgumentOutOfRangeException(nameof(synCount), synCount, "1 to 5,000 SYNs.");
        var flood = floodFor ?? TimeSpan.FromSeconds(1);
        if (flood > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(floodFor), flood, "At most 10 s.");
        var timeout = legitTimeout ?? TimeSpan.FromMilliseconds(1500);
        if (legitClients is < 0 or > 50) throw new ArgumentOutOfRangeException(nameof(legitClients), legitClients, "0 to 50 clients.");

        // Scopes opened on a thread inside the host: they write, and later restore, the host's own values.
        var scopes = host.Run(() =>
        {
            var list = new List<SysctlScope> { Sysctl.Set("net.ipv4.tcp_syncookies", syncookies) };
            if (maxSynBacklog is int m) list.Add(Sysctl.Set("net.ipv4.tcp_max_syn_backlog", m));
            return list;
        });
        try
        {
            long maxSyn = host.Run(() => Sysctl.ReadInt("net.ipv4.tcp_max_syn_backlog"));
            // SYN-ACKs to the spoofed sources go to a link address nobody owns. Left to ARP, resolution fails after about
            // 3 s (or at once, for entries an earlier flood left FAILED) and the kernel answers the listener with ICMP
            // host-unreachable, which drops that request from the SYN queue (ListenDrops): the queue would open slots
            // mid-flood, and legitimate clients would take them.
            using var pins = host.PinNeighboursToNowhere(SpoofedSources(host));
            using var listener = host.Run(() => Listener.Open(new IPEndPoint(host.Address, 0), backlog, new ListenerOptions { NonBlocking = true }));
            using var peer = RawTcpPeer.Open(host, listener.LocalEndPoint);
            var before = host.Run(() => NetCounters.Read());
            var clock = Stopwatch.StartNew();
            var samples = new List<SynQueueSample>();
            var stop = new CancellationTokenSource();
            // The queue is read through sock_diag from a thread inside the host.
            // Dedicated threads, not the thread pool: on a loaded machine a pooled flooder can start late, after the
            // legitimate clients have already connected to a queue that was not yet full.
            var sampler = Task.Factory.StartNew(() => host.Run(() =>
            {
                using var reader = ListenQueues.Reader(listener.LocalEndPoint);
                while (!stop.IsCancellationRequested)
                {
                    var r = reader.Read();
                    lock (samples) samples.Add(new SynQueueSample(clock.Elapsed.TotalSeconds, r.SynQueue, r.AcceptQueue));
                    Thread.Sleep(20);
                }
            }), TaskCreationOptions.LongRunning);
            // Flood only once the sampler is reading (its thread enters the namespace first), bounded at 3 s.
            var warm = Stopwatch.StartNew();
            while (warm.Elapsed < TimeSpan.FromSeconds(3)) { lock (samples) if (samples.Count > 0) break; Thread.Sleep(5); }
            int sent = 0;
            var flooder = Task.Factory.StartNew(() => sent = peer.SendSynFlood(SpoofedSources(host), synCount, flood), TaskCreationOptions.LongRunning);
            // The legitimate clients try while the flood holds the SYN queue full (backlog + 1 half-open requests),
            // so what they meet is the flood, not a queue that happens to have room. Bounded: at most 3 s.
            var full = Stopwatch.StartNew();
            while (legitClients > 0 && full.Elapsed < TimeSpan.FromSeconds(3))
            {
                lock (samples) if (samples.Count > 0 && samples[^1].SynQueue >= backlog + 1) break;
                Thread.Sleep(5);
            }
            // Legitimate clients start 100 ms apart while the flood runs, and are watched together, so all of them try
            // within the first ~2.5 s, before the kernel starts pruning old requests from a more-than-half-full queue.
            var legit = new List<LegitAttempt>();
            var conns = new List<(Connection C, double At)>();
            var result = new LegitAttempt?[legitClients];
            try
            {
                var next = clock.Elapsed;
                while (result.Any(r => r is null))
                {
                    if (conns.Count < legitClients && clock.Elapsed >= next) { conns.Add((Client.BeginConnect(listener.LocalEndPoint), clock.Elapsed.TotalSeconds)); next += TimeSpan.FromMilliseconds(100); }
                    for (int i = 0; i < conns.Count; i++)
                    {
                        if (result[i] != null) continue;
                        var waited = clock.Elapsed.TotalSeconds - conns[i].At;
                        if (conns[i].C.State == TcpState.Established) result[i] = new LegitAttempt(Math.Round(conns[i].At, 3), true, Math.Round(waited * 1000, 1));
                        else if (waited >= timeout.TotalSeconds) result[i] = new LegitAttempt(Math.Round(conns[i].At, 3), false, Math.Round(timeout.TotalMilliseconds, 1));
                    }
                    while (listener.TryAccept() is AcceptResult.Accepted a) a.Connection.Dispose();
                    Thread.Sleep(1);
                }
                legit.AddRange(result!);
            }
            finally { foreach (var c in conns) c.C.Dispose(); }
            flooder.Wait(flood + TimeSpan.FromSeconds(5));
            Thread.Sleep(300);   // the queue after the last SYN: its plateau, read a dozen more times
            stop.Cancel();
            sampler.Wait(TimeSpan.FromSeconds(5));
            var counters = before.Diff(host.Run(() => NetCounters.Read()));
            List<SynQueueSample> copy;
            lock (samples) copy = samples.ToList();
            return new SynFlood(syncookies, backlog, sent, copy, legit, counters, maxSyn);
        }
        finally
        {
            foreach (var s in scopes) s.Dispose();
        }
    }

    /// <summary>The SYN queue over time.</summary>
    public Figure QueueChart() => LabCharts.TimeSeries($"SYN queue during the flood (tcp_syncookies = {Syncookies}, backlog {Backlog})", "connections",
        Series.From("SYN queue (SYN-RECV)", Queue, q => q.Seconds, q => q.SynQueue),
        Series.From("accept queue", Queue, q => q.Seconds, q => q.AcceptQueue));

    /// <summary>Legitimate connect latency in several runs, side by side.</summary>
    public static Figure LegitChart(params SynFlood[] runs) => LabCharts.GroupedBars(
        "Legitimate clients during a SYN flood", "connect time, ms (a failed connect shows the timeout)",
        Enumerable.Range(0, runs.Max(r => r.Legit.Count)).Select(i => $"client {i}").ToList(),
        runs.Select(r => ($"tcp_syncookies = {r.Syncookies}: {r.LegitConnected}/{r.Legit.Count} connected",
            (IReadOnlyList<double>)r.Legit.Select(l => l.Milliseconds).ToList())).ToArray());
}
