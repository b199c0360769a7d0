using System.Diagnostics;
using Lab.Interop;

namespace Lab.Tests.Sockets;

/// <summary>Tests that change process-wide things (rlimits) or count the process's fds run alone.</summary>
[CollectionDefinition(nameof(ProcessWide), DisableParallelization = true)]
public sealed class ProcessWide { }

/// <summary>One row of `ss -tan`.</summary>
public sealed record SsRow(string State, int RecvQ, int SendQ, string Local, string Peer);

public static class Ss
{
    /// <summary>Every TCP socket with <paramref name="port"/> as its source or destination port, as ss prints it.</summary>
    public static IReadOnlyList<SsRow> Rows(int port)
    {
        var psi = new ProcessStartInfo("ss", $"-tanH \"( sport = :{port} or dport = :{port} )\"") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("ss did not start: install iproute2");
        var output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new TimeoutException("ss took over 10 s"); }
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => c.Length >= 5)
            .Select(c => new SsRow(c[0], int.Parse(c[1]), int.Parse(c[2]), c[3], c[4]))
            .ToList();
    }

    public static SsRow Listening(int port) => Rows(port).Single(r => r.State == "LISTEN" && r.Local.EndsWith($":{port}"));

    public static SsRow Connection(string local, string peer) => Rows(int.Parse(local[(local.LastIndexOf(':') + 1)..]))
        .Single(r => r.Local == local && r.Peer == peer);
}

/// <summary>Runs code on a fresh thread whose effective capability set lacks one capability (capabilities are per thread).</summary>
public static class ThreadCaps
{
    public static T Without<T>(int capability, Func<T> body) =>
        Lab.Hosts.Unprivileged.Run(body, TimeSpan.FromSeconds(20), (Lab.Hosts.Capability)capability);

    public static bool Has(int capability) => Lab.Hosts.Capabilities.Has((Lab.Hosts.Capability)capability);
}

/// <summary>
/// A loopback port nothing uses, below the ephemeral range, for "nothing listens here" tests. A port just freed by
/// closing a listener can be handed to a test running beside (bind to port 0 takes ephemeral ports), and a connect to a
/// free ephemeral port can, rarely, connect to itself (its own source port); neither happens below the range.
/// </summary>
public static class ClosedPort
{
    public static int Pick()
    {
        int low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries)[0]);
        var used = Lab.Observe.SocketTable.All().Select(r => r.Local.Port).ToHashSet();
        for (int port = low - 1; port > 1024; port--)
            if (!used.Contains(port)) return port;
        throw new InvalidOperationException($"every port from 1025 to {low - 1} is in use");
    }
}
