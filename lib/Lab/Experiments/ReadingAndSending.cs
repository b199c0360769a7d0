using Lab.Charts;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>One reading of both ends of a connection while data flows from writer (client) to reader (server): what chapter 05's
/// fill experiment samples.</summary>
/// <param name="RecvQ">The reader's unread bytes (SIOCINQ, ss's Recv-Q).</param>
/// <param name="ReaderWindow">The window the reader advertises (tcpi_rcv_wnd, bytes).</param>
/// <param name="SendQ">The writer's unacknowledged bytes, sent or not (SIOCOUTQ, ss's Send-Q).</param>
/// <param name="WriterSeesWindow">The reader's window as the writer last heard it (tcpi_snd_wnd, bytes).</param>
/// <param name="NotSent">The writer's bytes not yet sent at all (tcpi_notsent_bytes).</param>
/// <param name="Written">Bytes the writing application has handed to write() so far.</param>
/// <param name="Read">Bytes the reading application has read so far.</param>
public readonly record struct FlowReading(long RecvQ, long ReaderWindow, long SendQ, long WriterSeesWindow, long NotSent, long Written, long Read);

/// <summary>
/// One way of sending a request, timed and captured on one connection: chapter 05's write-write-read cells fill it in.
/// It splits the capture into requests by sequence number, which is bookkeeping, not what the chapter is about.
/// </summary>
public sealed class ModeResult
{
    /// <summary>The way the requests were sent ("TCP_NODELAY", ...).</summary>
    public required string Mode { get; init; }
    /// <summary>Milliseconds per request: first write() to the last byte of the response read.</summary>
    public required IReadOnlyList<double> Millis { get; init; }
    public IReadOnlyList<TcpSegment> Segments { get; init; } = [];
    public System.Net.IPEndPoint? ClientEndPoint { get; init; }
    public bool Captured { get; init; }

    public double Median => Stats.Percentile(Millis, 50);
    public double P90 => Stats.Percentile(Millis, 90);
    /// <summary>Requests that took 20 ms or more (a delayed-ACK stall; loopback round trips take tens of µs).</summary>
    public int Stalls => Millis.Count(m => m >= 20);

    /// <summary>Bytes per request and per response (to tell requests apart by sequence number).</summary>
    public int RequestBytes { get; init; }
    public int ResponseBytes { get; init; }

    bool FromClient(TcpSegment s) => s.Source.Equals(ClientEndPoint);

    /// <summary>
    /// The captured segments of request <paramref name="i"/> (0-based), told apart by sequence numbers, not clocks:
    /// the client's bytes of request i, the server's bytes of response i, and the pure ACKs acknowledging them.
    /// </summary>
    public IReadOnlyList<TcpSegment> SegmentsOf(int i)
    {
        var clientData = Segments.FirstOrDefault(s => FromClient(s) && s.PayloadLength > 0);
        var serverData = Segments.FirstOrDefault(s => !FromClient(s) && s.PayloadLength > 0);
        if (clientData == null || serverData == null) return [];
        uint c0 = clientData.Seq, s0 = serverData.Seq;
        bool InRequest(uint offset, bool inclusiveEnd, int size) =>
            inclusiveEnd ? offset > (uint)(i * size) && offset <= (uint)((i + 1) * size)
                         : offset >= (uint)(i * size) && offset < (uint)((i + 1) * size);
        return Segments.Where(s => FromClient(s)
            ? (s.PayloadLength > 0 ? InRequest(unchecked(s.Seq - c0), false, RequestBytes) : InRequest(unchecked(s.Ack - s0), true, ResponseBytes))
            : (s.PayloadLength > 0 ? InRequest(unchecked(s.Seq - s0), false, ResponseBytes) : InRequest(unchecked(s.Ack - c0), true, RequestBytes)))
            .ToList();
    }

    /// <summary>Data segments the client sent per request, on average.</summary>
    public double RequestSegmentsPerRequest =>
        Captured ? Segments.Count(s => s.Source.Equals(ClientEndPoint) && s.PayloadLength > 0) / (double)Millis.Count : double.NaN;

    /// <summary>One request's segments as tcpdump-like rows: time (ms from the request's first segment), direction, flags, bytes.</summary>
    public IReadOnlyList<SegmentRow> Rows(int i)
    {
        var segs = SegmentsOf(i);
        if (segs.Count == 0) return [];
        var t0 = segs[0].Time;
        return segs.Select(s => new SegmentRow(
            Math.Round((s.Time - t0).TotalMilliseconds, 3),
            FromClient(s) ? "client → server" : "server → client",
            s.FlagText, s.PayloadLength, s.Window)).ToList();
    }
}

/// <summary>A captured segment as a table row.</summary>
public sealed record SegmentRow(double Ms, string Direction, string Flags, int Bytes, int Window);
