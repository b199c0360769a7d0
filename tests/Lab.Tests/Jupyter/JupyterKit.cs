using System.Diagnostics;
using System.Text.Json.Nodes;
using Lab.Tests.Engine;

namespace Lab.Tests.Jupyter;

/// <summary>
/// The kernelspec installed by the built `lab jupyter install --prefix` into a temp folder (never a global install),
/// and Debian's Python (/usr/bin/python3, where jupyter_client, nbclient and jupyter_kernel_test live) run with
/// JUPYTER_PATH pointing there.
/// </summary>
public sealed class KernelSpecFixture : JupyterPathFixture
{
    public string SpecFolder => Path.Combine(JupyterPath, "kernels", "lab-csharp");

    public override async ValueTask InitializeAsync()
    {
        var r = await LabProcess.Run(Prefix, null, "jupyter", "install", "--prefix", Prefix);
        if (r.ExitCode != 0 || !File.Exists(Path.Combine(SpecFolder, "kernel.json")))
            throw new InvalidOperationException("lab jupyter install --prefix failed: " + r);
    }
}

/// <summary>
/// The real .NET Interactive kernel's `.net-csharp` kernelspec, installed by scripts/net-csharp-kernelspec (as the
/// devcontainer does) into a temp folder, never a global install.
/// </summary>
public sealed class DotnetInteractiveSpecFixture : JupyterPathFixture
{
    public string SpecFolder => Path.Combine(JupyterPath, "kernels", ".net-csharp");
    public bool Installed { get; private set; }

    public override async ValueTask InitializeAsync()
    {
        if (!Lab.Tests.Polyglot.RealKernel.Installed) return;
        var r = await Exec("bash", [Path.Combine(RepoRoot.Path, "scripts", "net-csharp-kernelspec"), Path.Combine(JupyterPath, "kernels")], timeout: TimeSpan.FromSeconds(120));
        if (r.ExitCode != 0 || !File.Exists(Path.Combine(SpecFolder, "kernel.json")))
            throw new InvalidOperationException("scripts/net-csharp-kernelspec failed: " + r);
        Installed = true;
    }
}

/// <summary>A temp JUPYTER_PATH and the processes run with it (Debian's Python and its Jupyter clients).</summary>
public abstract class JupyterPathFixture : IAsyncLifetime
{
    public string Prefix { get; } = Directory.CreateTempSubdirectory("lab-kernelspec-").FullName;
    public string JupyterPath => Path.Combine(Prefix, "share", "jupyter");

    public abstract ValueTask InitializeAsync();

    public ValueTask DisposeAsync()
    {
        try { Directory.Delete(Prefix, recursive: true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }

    public static string Scripts => Path.Combine(RepoRoot.Path, "tests", "jupyter");

    public sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        public string Output => Stdout + Stderr;
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";

        /// <summary>The JSON a probe printed after "RESULT ".</summary>
        public JsonObject Result()
        {
            var line = Stdout.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal))
                ?? throw new Xunit.Sdk.XunitException("the probe printed no RESULT line:\n" + this);
            return (JsonObject)JsonNode.Parse(line["RESULT ".Length..])!;
        }
    }

    /// <summary>Runs an executable with JUPYTER_PATH set; stdin is written then closed. Killed (whole tree) after <paramref name="timeout"/>.</summary>
    public async Task<Run> Exec(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoRoot.Path,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["JUPYTER_PATH"] = JupyterPath;
        psi.Environment["PYTHONUNBUFFERED"] = "1";
        // Kernels' runtime files (connection files) in a folder of the test's own.
        psi.Environment["JUPYTER_RUNTIME_DIR"] = Path.Combine(Prefix, "runtime");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin != null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var limit = timeout ?? TimeSpan.FromSeconds(240);
        try { await p.WaitForExitAsync().WaitAsync(limit); }
        catch (TimeoutException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not exit within {limit.TotalSeconds} s\n--- stdout\n{await stdout}\n--- stderr\n{await stderr}");
        }
        return new Run(p.ExitCode, await stdout, await stderr);
    }

    public Task<Run> Python(params string[] args) => Exec("/usr/bin/python3", args);

    public Task<Run> Probe(params string[] args) => Python(new[] { Path.Combine(Scripts, "kernel_probe.py") }.Concat(args).ToArray());
}

[CollectionDefinition(nameof(JupyterCollection), DisableParallelization = true)]
public class JupyterCollection : ICollectionFixture<KernelSpecFixture> { }
