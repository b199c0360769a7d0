using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Lab.Hosts;

namespace Lab.Tests.Devcontainer;

public class DevcontainerTests
{
    static readonly string Dir = Path.Combine(RepoRoot.Path, ".devcontainer");

    [Fact]
    public void DevcontainerJsonParsesAndNamesCapabilitiesExtensionsAndThePostCreateScript()
    {
        // devcontainer.json is JSON with comments (JSONC), as VS Code reads it.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "devcontainer.json")),
            new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var root = doc.RootElement;
        var capAdd = root.GetProperty("capAdd").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("NET_ADMIN", capAdd);
        Assert.Contains("NET_RAW", capAdd);
        Assert.DoesNotContain("ALL", capAdd);
        var runArgs = root.GetProperty("runArgs").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("--cap-add=NET_ADMIN", runArgs);
        Assert.Contains("--cap-add=NET_RAW", runArgs);
        Assert.DoesNotContain("--privileged", runArgs);
        var extensions = root.GetProperty("customizations").GetProperty("vscode").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("ms-toolsai.jupyter", extensions);
        Assert.Contains("ms-dotnettools.csharp", extensions);
        Assert.Contains("ms-dotnettools.dotnet-interactive-vscode",
            root.GetProperty("customizations").GetProperty("lab").GetProperty("optionalExtensions").EnumerateArray().Select(e => e.GetString()));
        var postCreate = root.GetProperty("postCreateCommand").GetString()!;
        Assert.Contains(".devcontainer/post-create.sh", postCreate);
        Assert.True(File.Exists(Path.Combine(RepoRoot.Path, ".devcontainer", "post-create.sh")));
    }

    [Fact]
    public async Task PostCreateRunsHereAndASecondRunChangesNothing()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin), "the post-create script installs Debian packages: needs root");
        var data = Directory.CreateTempSubdirectory("lab-jupyter-data-").FullName;
        var first = await PostCreate(data);
        Assert.True(first.Exit == 0, first.Output);
        var kernelJson = Path.Combine(data, "kernels", "lab-csharp", "kernel.json");
        Assert.True(File.Exists(kernelJson), "the kernelspec was not installed: " + first.Output);
        var netCsharp = Path.Combine(data, "kernels", ".net-csharp", "kernel.json");
        Assert.True(File.Exists(netCsharp), "the .net-csharp kernelspec was not installed: " + first.Output);
        Assert.Equal(Lab.Tests.Polyglot.RealKernel.Interactive, (string?)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(netCsharp))!["argv"]![0]);
        var before = Fingerprint(data);
        var second = await PostCreate(data);
        Assert.True(second.Exit == 0, second.Output);
        Assert.Equal(before, Fingerprint(data));
        Assert.Contains("prereqs: all", second.Output);       // nothing to install the second time
        Directory.Delete(data, recursive: true);
    }

    static async Task<(int Exit, string Output)> PostCreate(string jupyterData)
    {
        var psi = new ProcessStartInfo("bash", [Path.Combine(Dir, "post-create.sh")])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = RepoRoot.Path,
        };
        psi.Environment["JUPYTER_DATA_DIR"] = jupyterData;
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(5));
        return (p.ExitCode, await o + await e);
    }

    static string Fingerprint(string dir) => string.Join("\n", Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order()
        .Select(f => f + " " + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));
}
