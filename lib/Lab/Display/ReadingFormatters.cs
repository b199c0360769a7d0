using System.Net;
using System.Text;
using Lab.Observe;
using Lab.Sockets;
using static System.Net.WebUtility;

namespace Lab.Display;

/// <summary>
/// How the lab's kernel readings look in a notebook: a socket table like <c>ss -tan</c>, a listener's two queues
/// as gauges, counter changes as a short table, TCP_INFO as the fields the chapters read. Text forms are what a
/// terminal (the REPL) and a book's plain outputs show.
/// </summary>
public static class ReadingFormatters
{
    internal static void Register()
    {
        LabFormatters.Register<SocketTable>(SocketTableHtml, t => t.ToString());
        LabFormatters.Register<ListenQueueReading>(QueuesHtml, QueuesText);
        LabFormatters.Register<AcceptQueueReading>(
            r => Gauge("accept queue", r.Length, r.Limit + 1, $"{r.Length} queued, limit {r.Limit} (holds limit+1)"),
            r => $"accept queue {r.Length} (limit {r.Limit}{(r.Full ? ", full" : "")})");
        LabFormatters.Register<CounterDelta>(DeltaHtml, DeltaText);
        LabFormatters.Register<TcpInfo>(TcpInfoHtml, TcpInfoText);
        LabFormatters.Register<CheckResult>(
            c => $"<div class=\"lab-check lab-check-ok\" style=\"color:#11772d\">✓ {HtmlEncode(c.Claim)}" +
                 (c.Evidence is null ? "" : $" <span style=\"color:#555\">({HtmlEncode(c.Evidence)})</span>") + "</div>",
            c => c.ToString());
        // Addresses print as written, not as their properties (IPv4's ScopeId property throws, which showed as an error).
        LabFormatters.Register<IPAddress>(a => HtmlEncode(a.ToString()), a => a.ToString());
        LabFormatters.Register<IPEndPoint>(e => HtmlEncode(Endpoints.Format(e)), e => Endpoints.Format(e));
        // Results whose ToString is their report: a run's summary, a server's per-thread table, a stop report.
        Pre<Lab.Load.LoadResult>();
        Pre<Lab.Topologies.TopologyRun>();
        Pre<Lab.Topologies.TopologyMetrics>();
        Pre<Lab.Topologies.TopologyEvents>();
        Pre<Lab.Topologies.StopReport>();
        Pre<Lab.Topologies.Topology>();
    }

    static void Pre<T>() where T : notnull =>
        LabFormatters.Register<T>(v => $"<pre class=\"lab-report\">{HtmlEncode(v.ToString())}</pre>", v => v.ToString() ?? "");

    static string SocketTableHtml(SocketTable t)
    {
        var sb = new StringBuilder("<table class=\"lab-table lab-sockets\"><thead><tr><th>State</th><th>Recv-Q</th><th>Send-Q</th><th>Local Address:Port</th><th>Peer Address:Port</th></tr></thead><tbody>");
        foreach (var r in t)
            sb.Append($"<tr><td>{r.State.ToSsName()}</td><td style=\"text-align:right\">{r.RecvQ}</td><td style=\"text-align:right\">{r.SendQ}</td>" +
                      $"<td>{HtmlEncode(SocketRow.FormatEndPoint(r.Local, false))}</td><td>{HtmlEncode(SocketRow.FormatEndPoint(r.Remote, true))}</td></tr>");
        sb.Append($"</tbody></table><div style=\"color:#666;font-size:85%\">{t.Count} sockets, read through sock_diag at {t.At:HH:mm:ss.fff} UTC (what <code>ss -tan</code> reads)</div>");
        return sb.ToString();
    }

    static string QueuesHtml(ListenQueueReading r)
    {
        if (r.Listeners == 0) return $"<div>Nobody listens on port {r.Port}.</div>";
        var syn = r.SynQueue < 0
            ? "<div>SYN queue: not read (accept-queue-only reader)</div>"
            : Gauge("SYN queue", r.SynQueue, Math.Max(r.AcceptLimit + 1, r.SynQueue), $"{r.SynQueue} half-open (SYN-RECV)");
        return $"<div class=\"lab-queues\"><b>port {r.Port}</b>{syn}" +
               Gauge("accept queue", r.AcceptQueue, r.AcceptLimit + 1, $"{r.AcceptQueue} established, waiting for accept (limit {r.AcceptLimit})") +
               "</div>";
    }

    static string QueuesText(ListenQueueReading r) => r.Listeners == 0
        ? $"port {r.Port}: nobody listens"
        : $"port {r.Port}: SYN queue {(r.SynQueue < 0 ? "not read" : r.SynQueue.ToString())}, accept queue {r.AcceptQueue} (limit {r.AcceptLimit})";

    /// <summary>A horizontal bar: <paramref name="value"/> of <paramref name="max"/>, with a caption.</summary>
    public static string Gauge(string name, double value, double max, string caption)
    {
        var pct = max <= 0 ? 0 : Math.Clamp(value / max * 100, 0, 100);
        var color = pct >= 100 ? "#c0392b" : pct >= 75 ? "#e67e22" : "#2e86c1";
        return "<div style=\"display:flex;align-items:center;gap:8px;margin:2px 0\">" +
               $"<span style=\"width:110px\">{HtmlEncode(name)}</span>" +
               $"<span style=\"display:inline-block;width:240px;height:14px;background:#eee;border:1px solid #ccc\">" +
               $"<span style=\"display:block;width:{pct:0.#}%;height:100%;background:{color}\"></span></span>" +
               $"<span>{HtmlEncode(caption)}</span></div>";
    }

    static string DeltaHtml(CounterDelta d)
    {
        if (d.Count == 0) return "<div>No counter changed.</div>";
        var sb = new StringBuilder("<table class=\"lab-table\"><thead><tr><th>counter (nstat name)</th><th>change</th></tr></thead><tbody>");
        foreach (var (name, change) in d.OrderBy(kv => kv.Key))
            sb.Append($"<tr><td>{HtmlEncode(NetCounters.ToNstat(name))}</td><td style=\"text-align:right\">{change:+#;-#;0}</td></tr>");
        return sb.Append($"</tbody></table><div style=\"color:#666;font-size:85%\">changes over {d.Elapsed.TotalSeconds:0.###} s, from /proc/net/netstat and /proc/net/snmp</div>").ToString();
    }

    static string DeltaText(CounterDelta d) => d.Count == 0
        ? "no counter changed"
        : string.Join("\n", d.OrderBy(kv => kv.Key).Select(kv => $"{NetCounters.ToNstat(kv.Key),-32} {kv.Value:+#;-#;0}"));

    static IEnumerable<(string Name, string Value)> TcpInfoFields(TcpInfo i) =>
    [
        ("state", i.State.ToString()),
        ("rtt", $"{i.RttMicros} µs (var {i.RttVarMicros} µs)"),
        ("cwnd", $"{i.SndCwnd} segments"),
        ("send window (peer's advertised)", i.SndWnd is { } s ? $"{s} bytes" : "n/a on this kernel"),
        ("receive window (ours)", i.RcvWnd is { } r ? $"{r} bytes" : "n/a on this kernel"),
        ("unacked / sacked / lost", $"{i.Unacked} / {i.Sacked} / {i.Lost}"),
        ("bytes sent / acked / received", $"{i.BytesSent} / {i.BytesAcked} / {i.BytesReceived}"),
        ("retransmits (total)", $"{i.Retransmits} ({i.TotalRetrans})"),
    ];

    static string TcpInfoHtml(TcpInfo i)
    {
        var sb = new StringBuilder("<table class=\"lab-table\"><thead><tr><th>TCP_INFO</th><th></th></tr></thead><tbody>");
        foreach (var (n, v) in TcpInfoFields(i)) sb.Append($"<tr><td>{HtmlEncode(n)}</td><td>{HtmlEncode(v)}</td></tr>");
        return sb.Append("</tbody></table>").ToString();
    }

    static string TcpInfoText(TcpInfo i) => string.Join("\n", TcpInfoFields(i).Select(f => $"{f.Name,-32} {f.Value}"));
}
