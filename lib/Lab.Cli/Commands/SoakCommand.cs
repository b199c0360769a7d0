using System.CommandLine;
using Lab.Bench;

namespace Lab.Cli.Commands;

/// <summary>
/// <c>lab soak --seconds N</c>: churns connections through every topology in turn, keep-alive and close, for N
/// seconds, with the client and the servers in this process; checks that no request was lost and that this
/// process's live memory (after an aggressive GC) stays flat over the second half of the run, and its open fds too.
/// </summary>
public static class SoakCommand
{
    public static Command Create()
    {
        var seconds = new Option<double>("--seconds", "-s") { Description = "How long to run, 10 to 3600 s. Defaults to 600 (bench/soak); CI runs 30.", DefaultValueFactory = _ => 600 };
        var csvPath = new Option<string?>("--csv") { Description = "Also write every reading between slices to this CSV file (bench/soak's curve)." };
        var svgPath = new Option<string?>("--svg") { Description = "Also write the memory curve to this SVG file at the end (bench/README.md's chart)." };
        var leak = new Option<int>("--leak-per-connection") { Description = "A deliberate native leak of this many bytes per accepted connection, 0 to 65536, to prove the verdict catches one. Defaults to 0." };
        var connections = new Option<int>("--connections", "-c") { Description = "Client connections in each slice, 1 to 256. Defaults to 8.", DefaultValueFactory = _ => 8 };
        var command = new Command("soak", "Churn connections through every topology for a while; fail if a request is lost or memory or fds grow.")
        {
            seconds, connections, csvPath, svgPath, leak,
        };
        command.SetAction((parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var s = parse.GetValue(seconds);
            var c = parse.GetValue(connections);
            if (s is < 10 or > 3600 || double.IsNaN(s)) { parse.InvocationConfiguration.Error.WriteLine($"lab soak: --seconds {s}: give 10 to 3600"); return Task.FromResult(2); }
            if (c is < 1 or > 256) { parse.InvocationConfiguration.Error.WriteLine($"lab soak: --connections {c}: give 1 to 256"); return Task.FromResult(2); }
            var l = parse.GetValue(leak);
            if (l is < 0 or > 65536) { parse.InvocationConfiguration.Error.WriteLine($"lab soak: --leak-per-connection {l}: give 0 to 65536 bytes"); return Task.FromResult(2); }
            using var ctrlC = new CtrlC(ct);
            using var csv = parse.GetValue(csvPath) is { } path ? new StreamWriter(path) : null;
            var verdict = Soak.Run(new SoakOptions { Duration = TimeSpan.FromSeconds(s), Connections = c, LeakPerConnection = l, Csv = csv, SvgPath = parse.GetValue(svgPath) }, output.WriteLine, ctrlC.Token);
            output.WriteLine(verdict.ToString());
            return Task.FromResult(verdict.Passed ? 0 : 1);
        });
        return command;
    }
}
