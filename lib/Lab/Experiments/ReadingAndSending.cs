using Lab.Display;
using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Interop;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;
using Tmds.Linux;

namespace Lab.Experiments;

/// <summary>One reading of both ends of a connection while data flows from writer (client) to reader (server).</summary>
/// <param name="RecvQ">The reader's unread bytes (SIOCINQ, ss's Recv-Q).</param>
/// <param name="ReaderWindow">The window the reader advertises (tcpi_rcv_wnd, bytes).</param>
/// <param name="SendQ">The writer's unacknowledged bytes, sent or not (SIOCOUTQ, ss's Send-Q).</param>
/// <param name="WriterSeesWindow">The reader's window as the writer last heard it (tcpi_snd_wnd, bytes).</param>
/// <param name="NotSent">The writer's bytes not yet sent at all (tcpi_notsent_bytes).</param>
/// <param name="Written">Bytes the writing application has handed to write() so far.</param>
/// <param name="Read">Bytes the reading application has read so far.</param>
public readonly record struct FlowReading(long RecvQ, long ReaderWindow, long SendQ, long WriterSeesWindow, long NotSent, long Written, long Read);

/// <summary>Parameters of <see cref="FillExperiment"/>; the defaults fill the queues in well under a second.</summary>
public sealed record FillOptions
{
    /// <summary>SO_RCVBUF asked for on the reader (the kernel doubles it).</summary>
    public int ReceiveBuffer { get; init; } = 16 * 1024;
    /// <summary>SO_SNDBUF asked for on the writer (the kernel doubles it).</summary>
    public int SendBuffer { get; init; } = 16 * 1024;
    /// <summary>Bytes per write() call.</summary>
    public int WriteChunk { get; init; } = 1024;
    /// <summary>Bytes the writer sends in all.</summary>
    public int TotalBytes { get; init; } = 256 * 1024;
    /// <summary>How long the reader does not read, from the first write.</summary>
    public TimeSpan StallFor { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Bytes per read() once the reader reads again.</summary>
    public int ReadChunk { get; init; } = 4096;
    /// <summary>Pause between the reader's reads once it reads again.</summary>
    public TimeSpan ReadEvery { get; init; } = TimeSpan.FromMilliseconds(4);
    /// <summary>How often both ends are read.</summary>
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromMilliseconds(5);
    /// <summary>Capture the segments on lo (needs CAP_NET_RAW; skipped without it).</summary>
    public bool Capture { get; init; } = true;
}

/// <summary>What <see cref="FillExperiment.Run"/> saw.</summary>
public sealed class FillResult
{
    public required FillOptions Options { get; init; }
    public required IReadOnlyList<Sample<FlowReading>> Samples { get; init; }
    /// <summary>SO_RCVBUF as read back on the reader (doubled by the kernel).</summary>
    public int ReaderReceiveBuffer { get; init; }
    /// <summary>SO_SNDBUF as read back on the writer (doubled by the kernel).</summary>
    public int WriterSendBuffer { get; init; }
    /// <summary>Seconds from the start when the reader began reading again.</summary>
    public double ReadingResumedAt { get; init; }
    /// <summary>Seconds from the start of the first write() that returned EAGAIN (null if none did).</summary>
    public double? FirstWouldBlockAt { get; init; }
    /// <summary>write() calls that returned EAGAIN.</summary>
    public int WouldBlockCount { get; init; }
    /// <summary>Bytes write() had accepted when the first EAGAIN came: what both queues hold together.</summary>
    public long WrittenBeforeWouldBlock { get; init; }
    public long TotalWritten { get; init; }
    public long TotalRead { get; init; }
    /// <summary>Captured segments (empty without CAP_NET_RAW), and the writer's address to tell directions apart.</summary>
    public IReadOnlyList<TcpSegment> Segments { get; init; } = [];
    public IPEndPoint? WriterEndPoint { get; init; }
    /// <summary>TcpExt counters that moved during the run (the whole namespace's: other traffic may add to them).</summary>
    public CounterDelta? Counters { get; init; }

    IEnumerable<FlowReading> Stalled => Samples.Where(s => s.Elapsed.TotalSeconds < ReadingResumedAt).Select(s => s.Value);
    IEnumerable<FlowReading> After => Samples.Where(s => s.Elapsed.TotalSeconds > ReadingResumedAt).Select(s => s.Value);

    public long PeakRecvQ => Samples.Select(s => s.Value.RecvQ).DefaultIfEmpty().Max();
    public long PeakSendQ => Samples.Select(s => s.Value.SendQ).DefaultIfEmpty().Max();
    /// <summary>The reader's advertised window at the start (before data).</summary>
    public long InitialWindow => Samples.Select(s => s.Value.ReaderWindow).DefaultIfEmpty().First();
    /// <summary>The smallest window the writer was told while the reader stalled.</summary>
    public long MinWindowWhileStalled => Stalled.Select(v => v.WriterSeesWindow).DefaultIfEmpty(-1).Min();
    /// <summary>The largest window the writer was told after the reader resumed.</summary>
    public long MaxWindowAfterResume => After.Select(v => v.WriterSeesWindow).DefaultIfEmpty(-1).Max();
    /// <summary>Seconds from the start of the first sample where the writer saw a zero window (null if never).</summary>
    public double? ZeroWindowAt => Samples.Where(s => s.Value.WriterSeesWindow == 0).Select(s => (double?)s.Elapsed.TotalSeconds).FirstOrDefault();
    /// <summary>Recv-Q at the end of the stall (the plateau).</summary>
    public long RecvQPlateau => Stalled.Select(v => v.RecvQ).DefaultIfEmpty().Last();
    /// <summary>Bytes write() had accepted by the end of the stall.</summary>
    public long WrittenByEndOfStall => Stalled.Select(v => v.Written).DefaultIfEmpty().Last();
    /// <summary>Send-Q at the end of the stall.</summary>
    public long SendQPlateau => Stalled.Select(v => v.SendQ).DefaultIfEmpty().Last();

    bool FromWriter(TcpSegment s) => WriterEndPoint != null && s.Source.Equals(WriterEndPoint);
    /// <summary>Segments from the reader advertising a zero window.</summary>
    public int ZeroWindowAdverts => Segments.Count(s => !FromWriter(s) && s.Window == 0 && !s.Flags.HasFlag(TcpFlags.Syn));
    /// <summary>Zero-window probes: segments from the writer with no data whose sequence number is one below what the reader acknowledged.</summary>
    public IReadOnlyList<TcpSegment> ZeroWindowProbes
    {
        get
        {
            var probes = new List<TcpSegment>();
            uint? lastAck = null;
            foreach (var s in Segments)
            {
                if (!FromWriter(s)) { if (s.Flags.HasFlag(TcpFlags.Ack)) lastAck = s.Ack; continue; }
                if (s.PayloadLength == 0 && lastAck is uint a && s.Seq == unchecked(a - 1)) probes.Add(s);
            }
            return probes;
        }
    }

    /// <summary>Both queues and both windows over time, with the moment the reader resumed.</summary>
    public Figure Chart() => FillExperiment.ChartOf(Samples, "One connection: the reader stops, then reads again");

    /// <summary>The figures as rows (for a table).</summary>
    public IReadOnlyList<Reading> Summary() => SummaryPairs().Select(p => new Reading(p.Item1, p.Item2)).ToList();

    /// <summary>The zero-window counters (TcpExt) that moved during the run, as rows.</summary>
    public IReadOnlyList<CounterRow> ZeroWindowCounters() =>
        FillExperiment.CounterNames.Select(n => new CounterRow(n, Counters?[n] ?? 0)).ToList();

    IReadOnlyList<(string, string)> SummaryPairs() =>
    [
        ("reader SO_RCVBUF (asked, read back)", $"{Options.ReceiveBuffer} → {ReaderReceiveBuffer} bytes"),
        ("writer SO_SNDBUF (asked, read back)", $"{Options.SendBuffer} → {WriterSendBuffer} bytes"),
        ("reader's window at the start", $"{InitialWindow} bytes"),
        ("Recv-Q plateau (unread, on the reader)", $"{RecvQPlateau} bytes"),
        ("Send-Q plateau (unacknowledged, on the writer)", $"{SendQPlateau} bytes"),
        ("written before the first EAGAIN", $"{WrittenBeforeWouldBlock} bytes at {FirstWouldBlockAt:0.000} s"),
        ("write() calls that returned EAGAIN", $"{WouldBlockCount}"),
        ("written by the end of the stall", $"{WrittenByEndOfStall} bytes"),
        ("window the writer saw while stalled (min)", $"{MinWindowWhileStalled} bytes" + (ZeroWindowAt is double z ? $", zero from {z:0.000} s" : "")),
        ("window after the reader resumed (max)", $"{MaxWindowAfterResume} bytes"),
        ("zero-window adverts / probes captured", Segments.Count == 0 ? "not captured" : $"{ZeroWindowAdverts} / {ZeroWindowProbes.Count}"),
        ("bytes written / read", $"{TotalWritten} / {TotalRead}"),
    ];
}

/// <summary>
/// The reader stops reading: its Recv-Q grows, its advertised window shrinks to zero, the writer's Send-Q fills and
/// write() returns EAGAIN. Then the reader reads again and the window reopens. Both ends are read every few ms
/// (SIOCINQ, SIOCOUTQ, TCP_INFO); with an <c>update</c> callback the chart is redrawn live.
/// </summary>
public static class FillExperiment
{
    public static readonly string[] CounterNames =
        ["TcpExt.TCPWantZeroWindowAdv", "TcpExt.TCPToZeroWindowAdv", "TcpExt.TCPFromZeroWindowAdv", "TcpExt.TCPWinProbe", "TcpExt.TCPZeroWindowDrop"];

    public static FillResult Run(FillOptions? options = null, Action<object>? update = null)
    {
        var live = LiveView.Of(update);
        var o = options ?? new FillOptions();
        if (o.WriteChunk <= 0 || o.ReadChunk <= 0 || o.TotalBytes <= 0) throw new ArgumentOutOfRangeException(nameof(options), "Chunks and total must be positive.");
        if (o.StallFor < TimeSpan.Zero || o.StallFor > TimeSpan.FromSeconds(20)) throw new ArgumentOutOfRangeException(nameof(options), o.StallFor, "Stall 0-20 s.");
        using var pair = ConnectedPair.Open(serverReceiveBuffer: o.ReceiveBuffer, clientSendBuffer: o.SendBuffer);
        var writer = pair.Client;
        var reader = pair.Server;
        writer.NonBlocking = true;
        long written = 0, read = 0;
        PacketCapture? capture = null;
        if (o.Capture && Lab.Hosts.Capabilities.Has(Lab.Hosts.Capability.NetRaw))
            capture = PacketCapture.Start(pair.Listener.Port, "lo", maxPackets: 20_000, maxDuration: o.StallFor + TimeSpan.FromSeconds(30));
        var before = NetCounters.Read();
        using var sampler = Sampler.Start(o.SampleEvery, () =>
        {
            var ri = reader.Info();
            var wi = writer.Info();
            return new FlowReading(reader.InQueue, ri.RcvWnd ?? -1, writer.OutQueue, wi.SndWnd ?? -1, wi.NotsentBytes,
                Interlocked.Read(ref written), Interlocked.Read(ref read));
        }, o.StallFor + TimeSpan.FromSeconds(30));
        var clock = Stopwatch.StartNew();
        // Redraw live from its own thread, so a slow first chart (JIT) never holds up the sampler.
        using var redrawStop = new CancellationTokenSource();
        var redraw = update == null ? Task.CompletedTask : Task.Factory.StartNew(() =>
        {
            while (!redrawStop.Token.WaitHandle.WaitOne(250))
                live!.Frame(ChartOf(sampler.Samples, "One connection: the reader stops, then reads again (live)"));
        }, TaskCreationOptions.LongRunning);
        Thread.Sleep(30); // a few readings of the idle connection first
        double? firstBlock = null;
        long writtenAtBlock = 0;
        int blocks = 0;
        var deadline = TimeSpan.FromSeconds(30) + o.StallFor;
        var sw = Stopwatch.StartNew();
        double offset = clock.Elapsed.TotalSeconds; // sampler and clock started together (within µs)
        var writerTask = Task.Factory.StartNew(() =>
        {
            var chunk = new byte[o.WriteChunk];
            while (Interlocked.Read(ref written) < o.TotalBytes && sw.Elapsed < deadline)
            {
                int n = (int)Math.Min(chunk.Length, o.TotalBytes - Interlocked.Read(ref written));
                var r = writer.Write(chunk.AsSpan(0, n));
                if (r.IsData) { Interlocked.Add(ref written, r.Bytes); continue; }
                if (r.IsReset) break;
                blocks++;
                if (firstBlock == null) { firstBlock = offset + sw.Elapsed.TotalSeconds; writtenAtBlock = Interlocked.Read(ref written); }
                Sys.Poll(writer.Handle, LibC.POLLOUT, 20, "writer");
            }
        }, TaskCreationOptions.LongRunning);

        // The reader: nothing for StallFor, then paced reads until everything has arrived.
        while (sw.Elapsed < o.StallFor) Thread.Sleep(5);
        double resumedAt = offset + sw.Elapsed.TotalSeconds;
        var buf = new byte[o.ReadChunk];
        while (Interlocked.Read(ref read) < o.TotalBytes && sw.Elapsed < deadline)
        {
            if ((Sys.Poll(reader.Handle, LibC.POLLIN, 50, "reader") & LibC.POLLIN) == 0) continue;
            var r = reader.Read(buf);
            if (!r.IsData) break;
            Interlocked.Add(ref read, r.Bytes);
            if (o.ReadEvery > TimeSpan.Zero) Thread.Sleep(o.ReadEvery);
        }
        writerTask.Wait(TimeSpan.FromSeconds(5));
        Thread.Sleep(30); // the last ACKs
        sampler.Stop();
        redrawStop.Cancel();
        redraw.Wait(TimeSpan.FromSeconds(10));
        capture?.Dispose();
        var after = NetCounters.Read();
        var result = new FillResult
        {
            Options = o,
            Samples = sampler.Samples,
            ReaderReceiveBuffer = reader.ReceiveBufferSize,
            WriterSendBuffer = writer.SendBufferSize,
            ReadingResumedAt = resumedAt,
            FirstWouldBlockAt = firstBlock,
            WouldBlockCount = blocks,
            WrittenBeforeWouldBlock = writtenAtBlock,
            TotalWritten = Interlocked.Read(ref written),
            TotalRead = Interlocked.Read(ref read),
            Segments = capture?.Segments ?? [],
            WriterEndPoint = writer.LocalEndPoint,
            Counters = before.Diff(after),
        };
        live?.Final(result.Chart());
        if (sampler.Error != null) throw new InvalidOperationException("Sampling failed: " + sampler.Error.Message, sampler.Error);
        return result;
    }

    internal static Figure ChartOf(IReadOnlyList<Sample<FlowReading>> samples, string title)
    {
        double S(Sample<FlowReading> s) => s.Elapsed.TotalSeconds;
        return LabCharts.TimeSeries(title, "bytes",
            Series.From("reader Recv-Q (unread, SIOCINQ)", samples, S, s => s.Value.RecvQ),
            Series.From("reader's advertised window (tcpi_rcv_wnd)", samples, S, s => s.Value.ReaderWindow),
            Series.From("writer Send-Q (unacked, SIOCOUTQ)", samples, S, s => s.Value.SendQ),
            Series.From("window the writer sees (tcpi_snd_wnd)", samples, S, s => s.Value.WriterSeesWindow));
    }
}

/// <summary>A named reading, as a table row.</summary>
public sealed record Reading(string What, string Value);

/// <summary>A counter's change, as a table row.</summary>
public sealed record CounterRow(string Counter, long Change);

/// <summary>A blocked write, timed: chapter 05.</summary>
public static class ReadingAndSending
{
    /// <summary>
    /// A blocking write() into a full send queue: the writer fills both queues (non-blocking, until EAGAIN), switches
    /// the socket to blocking and writes <paramref name="bytes"/> more, while the reader sleeps for
    /// <paramref name="readerSleeps"/> and then reads everything. SO_SNDTIMEO (the sleep + 5 s) bounds the wait.
    /// </summary>
    public static BlockedWriteResult BlockedWrite(TimeSpan readerSleeps, int bytes = 1024, int receiveBuffer = 16 * 1024, int sendBuffer = 16 * 1024)
    {
        if (readerSleeps < TimeSpan.Zero || readerSleeps > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(readerSleeps), readerSleeps, "0-10 s.");
        using var pair = ConnectedPair.Open(serverReceiveBuffer: receiveBuffer, clientSendBuffer: sendBuffer);
        var w = pair.Client;
        w.NonBlocking = true;
        var chunk = new byte[1024];
        long filled = 0;
        var fill = Stopwatch.StartNew();
        while (fill.Elapsed < TimeSpan.FromSeconds(5))
        {
            var r = w.Write(chunk);
            if (r.IsData) { filled += r.Bytes; continue; }
            // EAGAIN. The queues take a moment to settle (the reader compacts its queue and re-advertises room, late
            // ACKs free sent data): wait up to 300 ms for room. POLLOUT needs a third of the send buffer free, but a
            // write needs only some room (sk_stream_memory_free), and on a busy machine late ACKs freed a little: the
            // "blocking" write then returned at once. So full means a write still returns EAGAIN after the wait.
            Sys.Poll(w.Handle, LibC.POLLOUT, 300, "writer");
            r = w.Write(chunk);
            if (r.IsData) { filled += r.Bytes; continue; }
            break;
        }
        int recvQ = pair.Server.InQueue, sendQ = w.OutQueue;
        w.NonBlocking = false;
        Sys.SetTimeval(w.Handle, sys_socket.SO_SNDTIMEO, readerSleeps + TimeSpan.FromSeconds(5), "SO_SNDTIMEO");
        long drained = 0;
        var reader = Task.Factory.StartNew(() =>
        {
            Thread.Sleep(readerSleeps);
            var buf = new byte[64 * 1024];
            var until = Stopwatch.StartNew();
            while (drained < filled + bytes && until.Elapsed < TimeSpan.FromSeconds(10))
            {
                if ((Sys.Poll(pair.Server.Handle, LibC.POLLIN, 50, "reader") & LibC.POLLIN) == 0) continue;
                var r = pair.Server.Read(buf);
                if (!r.IsData) break;
                drained += r.Bytes;
            }
        }, TaskCreationOptions.LongRunning);
        var sw = Stopwatch.StartNew();
        var result = w.Write(new byte[bytes]);
        var blocked = sw.Elapsed;
        reader.Wait(TimeSpan.FromSeconds(12));
        return new BlockedWriteResult(filled, recvQ, sendQ, readerSleeps.TotalMilliseconds, Math.Round(blocked.TotalMilliseconds, 1), result.ToString());
    }
}

/// <summary>What <see cref="ReadingAndSending.BlockedWrite"/> measured.</summary>
/// <param name="FilledBytes">Bytes write() accepted before EAGAIN: what the two queues hold together.</param>
/// <param name="RecvQ">The reader's Recv-Q once full.</param>
/// <param name="SendQ">The writer's Send-Q once full.</param>
/// <param name="ReaderSleptMs">How long the reader did not read.</param>
/// <param name="WriteBlockedMs">How long the blocking write() took to return.</param>
/// <param name="WriteResult">What it returned.</param>
public sealed record BlockedWriteResult(long FilledBytes, int RecvQ, int SendQ, double ReaderSleptMs, double WriteBlockedMs, string WriteResult);
