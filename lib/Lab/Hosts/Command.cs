using System.Diagnostics;

namespace Lab.Hosts;

/// <summary>The output of a finished command.</summary>
public sealed record CommandResult(string Command, int ExitCode, string StdOut, string StdErr)
{
    public bool Ok => ExitCode == 0;
}

/// <summary>
/// Runs the machine's own tools (ip, nft, ss) with a bounded wait. Used for setting up hosts, never for readings:
/// readings come from the kernel directly (Lab.Observe).
/// </summary>
public static class Command
{
    /// <summary>Runs <paramref name="file"/> and returns its output; kills it after <paramref name="timeout"/> (defaults to 10 s).</summary>
    public static CommandResult Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin != null,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var text = file + " " + string.Join(' ', psi.ArgumentList);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LabSetupException($"`{text}` could not start: {e.Message}.",
                $"Install the package that provides `{file}` (bash scripts/prereqs installs everything the lab uses).");
        }
        using (p)
        {
            if (stdin != null) { p.StandardInput.Write(stdin); p.StandardInput.Close(); }
            var outTask = p.StandardOutput.ReadToEndAsync();
            var errTask = p.StandardError.ReadToEndAsync();
            var limit = timeout ?? TimeSpan.FromSeconds(10);
            if (!p.WaitForExit(limit))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit(2000);
                throw new LabSetupException($"`{text}` did not finish within {limit.TotalSeconds:0.#} s and was killed.",
                    "The machine may be overloaded; try again.");
            }
            return new CommandResult(text, p.ExitCode, outTask.Result, errTask.Result);
        }
    }

    /// <summary>Runs a command and throws a <see cref="LabSetupException"/> naming it and its stderr when it fails.</summary>
    public static string Check(string file, params string[] args)
    {
        var r = Run(file, args);
        if (!r.Ok)
            throw new LabSetupException($"`{r.Command}` failed (exit {r.ExitCode}): {r.StdErr.Trim()}", HintFor(r.StdErr));
        return r.StdOut;
    }

    static string HintFor(string stderr) =>
        stderr.Contains("Operation not permitted") || stderr.Contains("Permission denied")
            ? "This needs CAP_NET_ADMIN: run as root, or add --cap-add=NET_ADMIN to the container's runArgs."
            : stderr.Contains("File exists")
                ? "A leftover from an earlier run is in the way: NetHost.RemoveStale() clears the lab's own leftovers."
                : "Check the command's message above.";
}

/// <summary>Setting up part of the lab's environment failed (a namespace, a rule, a tool); the message says what to do.</summary>
public sealed class LabSetupException(string message, string hint) : Exception(message + " " + hint)
{
    /// <summary>What a learner can do about it.</summary>
    public string Hint { get; } = hint;
}
