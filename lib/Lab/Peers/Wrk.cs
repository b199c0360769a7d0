using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Lab.Hosts;
using Lab.Sockets;

namespace Lab.Peers;

/// <summary>What one wrk run reported (parsed from <c>wrk --latency</c>).</summary>
/// <param name="Requests">Responses received ("N requests in").</param>
/// <param name="Duration">How long wrk ran, as it reports it.</param>
/// <param name="RequestsPerSecond">wrk's "Requests/sec".</param>
/// <param name="P50">The median latency from the "Latency Distribution" table.</param>
/// <param name="P99">The 99th percentile latency.</param>
/// <param name="Errors">Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses.</param>
/// <param name="Output">wrk's whole output, for a reader who wants the rest.</param>
public sealed record WrkResult(long Requests, TimeSpan Duration, double RequestsPerSecond, TimeSpan P50, TimeSpan P99, long Errors, string Output)
{
    /// <summary>"86,600 req/s, p50 0.35 ms, p99 1.20 ms, 0 errors".</summary>
    public override string ToString() =>
        $"{RequestsPerSecond:N0} req/s, p50 {P50.TotalMilliseconds:0.00} ms, p99 {P99.TotalMilliseconds:0.00} ms, {Errors} errors";
}

/// <summary>
/// wrk (/usr/bin/wrk, Debian's package), the load generator people trust, run against loopback or a lab host.
/// </summary>
public static partial class Wrk
{
    /// <summary>Where Debian installs wrk.</summary>
    public const string Binary = "/usr/bin/wrk";

    /// <summary>The longest run allowed.</summary>
    public static readonly TimeSpan MaxDuration = TimeSpan.FromMinutes(10);

    /// <summary>True when wrk is installed where Debian puts it.</summary>
    public static bool Installed => File.Exists(Binary);

    /// <summary>
    /// Runs <c>wrk --latency -tTHREADS -cCONNECTIONS -dSECONDS URL</c> (plus <c>-H "Connection: close"</c> when
    /// <paramref name="close"/>) and parses its report. <paramref name="duration"/> is rounded up to whole seconds
    /// (wrk's unit), 1 s to 10 min. Cancelling kills wrk. Throws <see cref="LabSetupException"/> when wrk is missing.
    /// </summary>
    public static WrkResult Run(string url, int threads, int connections, TimeSpan duration, bool close = false, CancellationToken ct = default)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != "http")
            throw new ArgumentException($"'{url}' is not an http:// URL.", nameof(url));
        var addresses = IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) ? [ip]
            : uri.Host == "localhost" ? new[] { IPAddress.Loopback }
            : throw new ArgumentException($"wrk's target '{uri.Host}' must be an IP address (loopback or a lab host), not a name.", nameof(url));
        foreach (var a in addresses) LabAddresses.Ensure(a, "wrk target");
        if (threads < 1 || threads > 64) throw new ArgumentOutOfRangeException(nameof(threads), threads, "wrk threads must be 1-64.");
        if (connections < threads || connections > 10_000)
            throw new ArgumentOutOfRangeException(nameof(connections), connections, $"wrk connections must be {threads} (one per thread) to 10000.");
        if (duration <= TimeSpan.Zero || duration > MaxDuration)
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "wrk's duration must be more than 0 and at most 10 min.");
        if (!Installed)
            throw new LabSetupException($"wrk is not installed ({Binary} is missing).", "Install it: apt-get install -y wrk (bench/run does this).");

        int seconds = (int)Math.Ceiling(duration.TotalSeconds);
        var psi = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--latency", $"-t{threads}", $"-c{connections}", $"-d{seconds}s", "--timeout", "10s" }) psi.ArgumentList.Add(a);
        if (close) { psi.ArgumentList.Add("-H"); psi.ArgumentList.Add("Connection: close"); }
        psi.ArgumentList.Add(url);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = p.StandardError.ReadToEndAsync(CancellationToken.None);
        using (ct.Register(() => { try { p.Kill(); } catch (InvalidOperationException) { } }))
        {
            if (!p.WaitForExit(TimeSpan.FromSeconds(seconds + 30)))
            {
                try { p.Kill(); } catch (InvalidOperationException) { }
                p.WaitForExit(2000);
                throw new LabSetupException($"wrk ran {seconds + 30} s past its {seconds} s and was killed.", "The machine may be overloaded; try again.");
            }
        }
        ct.ThrowIfCancellationRequested();
        var output = stdout.Result + stderr.Result;
        if (p.ExitCode != 0) throw new InvalidOperationException($"wrk exited with {p.ExitCode}: {output.Trim()}");
        return Parse(output);
    }

    /// <summary>Parses a <c>wrk --latency</c> report.</summary>
    public static WrkResult Parse(string output)
    {
        var total = RequestsIn().Match(output);
        var rate = RequestsPerSec().Match(output);
        if (!total.Success || !rate.Success)
            throw new FormatException($"wrk's output has no \"N requests in\" / \"Requests/sec\" lines: {output.Trim()}");
        var requests = long.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture);
        var duration = Time(total.Groups[2].Value, total.Groups[3].Value);
        TimeSpan Percentile(string p)
        {
            var m = Regex.Match(output, $@"^\s*{p}%\s+([\d.]+)(us|ms|s|m|h)\s*$", RegexOptions.Multiline);
            if (!m.Success) throw new FormatException($"wrk's output has no {p}% latency (was --latency passed?): {output.Trim()}");
            return Time(m.Groups[1].Value, m.Groups[2].Value);
        }
        long errors = 0;
        var sock = SocketErrors().Match(output);
        if (sock.Success) for (int g = 1; g <= 4; g++) errors += long.Parse(sock.Groups[g].Value, CultureInfo.InvariantCulture);
        var non2xx = Non2xx().Match(output);
        if (non2xx.Success) errors += long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture);
        return new WrkResult(requests, duration, double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture),
            Percentile("50"), Percentile("99"), errors, output);
    }

    static TimeSpan Time(string number, string unit)
    {
        var v = double.Parse(number, CultureInfo.InvariantCulture);
        return unit switch
        {
            "us" => TimeSpan.FromTicks((long)Math.Round(v * 10)),
            "ms" => TimeSpan.FromMilliseconds(v),
            "s" => TimeSpan.FromSeconds(v),
            "m" => TimeSpan.FromMinutes(v),
            "h" => TimeSpan.FromHours(v),
            _ => throw new FormatException($"wrk time unit '{unit}' is unknown."),
        };
    }

    [GeneratedRegex(@"(\d+) requests in ([\d.]+)(us|ms|s|m|h)")]
    private static partial Regex RequestsIn();
    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsPerSec();
    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();
    [GeneratedRegex(@"Non-2xx or 3xx responses: (\d+)")]
    private static partial Regex Non2xx();
}
