using System.Diagnostics;

namespace Lab.Tests.Engine;

/// <summary>The built `lab` command run as a child process, as a reader or CI runs it.</summary>
static class LabProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    public static string Dll => Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab.Cli", "debug", "Lab.Cli.dll");

    /// <summary>
    /// Starts the built `lab` with <paramref name="args"/> so that SIGINT reaches it as Ctrl+C from a terminal does. A
    /// process started with SIGINT ignored (a script's `cmd &amp;` without job control, nohup) passes that on to every
    /// child, and .NET installs no handler for a signal ignored at start, so Console.CancelKeyPress never fires and a
    /// test's SIGINT does nothing (seen: busy-machine runs launched in the background failed every Ctrl+C test).
    /// `env --default-signal=INT` (coreutils 8.31+) restores the default before it execs dotnet, keeping the pid.
    /// </summary>
    public static ProcessStartInfo Interruptible(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("env") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--default-signal=INT", "dotnet", Dll }.Concat(args)) psi.ArgumentList.Add(a);
        return psi;
    }

    public static async Task<Result> Run(string workingDirectory, string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin != null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        try { await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(300)); }
        catch (TimeoutException) { p.Kill(entireProcessTree: true); throw new TimeoutException($"lab {string.Join(' ', args)} did not exit within 300 s"); }
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Runs the built `lab` with <paramref name="args"/> under capsh without CAP_NET_ADMIN and CAP_NET_RAW, as in a
    /// container started without --cap-add; waits at most <paramref name="within"/>. Needs /usr/sbin/capsh and root.
    /// </summary>
    public static async Task<Result> RunWithoutNetCapabilities(TimeSpan within, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/sbin/capsh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var command = "exec dotnet " + string.Join(' ', new[] { Dll }.Concat(args).Select(a => $"'{a}'"));
        foreach (var a in new[] { "--drop=cap_net_admin,cap_net_raw", "--", "-c", command }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var ct = TestContext.Current.CancellationToken;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct).WaitAsync(within, ct);
        return new Result(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>A temp tree: lib/ holds a copy of the built library, nb/ a copy of a fixture folder (its notebooks #r "../lib/Lab.dll").</summary>
    public static string FixtureTree(string fixtureFolder)
    {
        var root = Directory.CreateTempSubdirectory("lab-fixture-").FullName;
        var lib = Directory.CreateDirectory(Path.Combine(root, "lib")).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot.Path, "artifacts", "bin", "Lab", "debug"), "*.dll"))
            File.Copy(f, Path.Combine(lib, Path.GetFileName(f)));
        var nb = Directory.CreateDirectory(Path.Combine(root, "nb")).FullName;
        var src = Path.Combine(AppContext.BaseDirectory, "Fixtures", fixtureFolder);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(nb, Path.GetFileName(f)));
        return root;
    }

    public static async Task<(int ExitCode, string Output)> Python(params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (p.ExitCode, await o + await e);
    }
}
