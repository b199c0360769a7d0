using System.Net.Http;
using System.Text.RegularExpressions;
using Lab.Hosts;
using Lab.Peers;

namespace Lab.Tests.Reliability;

/// <summary>
/// The shell scripts that touch the machine: scripts/prereqs (and scripts/apt-install under it) must end no process,
/// and scripts/machine-state must see a process the run left behind. Runs alone: it counts the machine's processes.
/// </summary>
[Collection(nameof(Lab.Tests.Sockets.ProcessWide))]
public class ScriptsTests
{
    static string Script(string name) => Path.Combine(RepoRoot.Path, "scripts", name);

    static CommandResult Bash(TimeSpan timeout, params string[] args) => Command.Run("bash", args, timeout);

    static string Processes()
    {
        var r = Bash(TimeSpan.FromSeconds(20), Script("machine-state"));
        Assert.True(r.Ok, r.StdErr);
        var at = r.StdOut.IndexOf("## processes\n", StringComparison.Ordinal);
        Assert.True(at >= 0, "machine-state has no processes section:\n" + r.StdOut);
        return r.StdOut[(at + "## processes\n".Length)..];
    }

    /// <summary>The nginx and memcached lines of <see cref="Processes"/>: what a package install could start or a clean-up end.
    /// (Lab processes come and go beside a test when a developer runs tests by hand; in CI nothing else runs.)</summary>
    static string Peers() => string.Join('\n', Processes().Split('\n').Where(l => l.Split(' ') is [_, "nginx" or "memcached", ..]));

    static string? ReadOrNull(string path) => File.Exists(path) ? File.ReadAllText(path) : null;

    /// <summary>
    /// An nginx that runs before prereqs installs something (here the small package `hello`, removed again after)
    /// still runs, and still answers, after it; the install started no nginx or memcached of its own; and
    /// /usr/sbin/policy-rc.d is as it was (absent, or the machine's own file).
    /// </summary>
    [Fact]
    public async Task AnNginxThatRanBeforePrereqsStillRunsAfterIt()
    {
        Assert.SkipUnless(Environment.UserName == "root", "prereqs installs packages: needs root");
        Assert.SkipUnless(Nginx.Installed, "nginx is not installed (bash scripts/prereqs)");
        Assert.SkipWhen(File.Exists("/usr/bin/hello"), "the package `hello` is already installed, so prereqs would install nothing");
        const string policy = "/usr/sbin/policy-rc.d";
        var policyBefore = ReadOrNull(policy);
        using var foreign = Nginx.Start();
        var before = Peers();
        Assert.Contains($"{foreign.MasterPid} nginx", before);
        try
        {
            var r = Bash(TimeSpan.FromMinutes(3), Script("prereqs"), "hello");
            Assert.True(r.Ok, $"prereqs hello: exit {r.ExitCode}\n{r.StdOut}\n{r.StdErr}");
            Assert.Contains("prereqs: installing hello", r.StdOut);
            Assert.True(File.Exists("/usr/bin/hello"), "prereqs said it installed hello, but /usr/bin/hello is missing");
        }
        finally
        {
            if (File.Exists("/usr/bin/hello")) Command.Run("dpkg", ["--purge", "hello"], TimeSpan.FromMinutes(1));
        }
        Assert.True(Directory.Exists($"/proc/{foreign.MasterPid}"), $"the nginx that ran before prereqs (pid {foreign.MasterPid}) is gone");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync(foreign.Url, TestContext.Current.CancellationToken)).StatusCode);
        Assert.Equal(before, Peers());
        Assert.Equal(policyBefore, ReadOrNull(policy));
    }

    /// <summary>A peer started after the first snapshot shows in the second, and is gone from the third once stopped.</summary>
    [Fact]
    public void MachineStateSeesAPeerLeftRunning()
    {
        Assert.SkipUnless(Nginx.Installed, "nginx is not installed (bash scripts/prereqs)");
        var before = Peers();
        string during;
        int pid;
        using (var nginx = Nginx.Start())
        {
            pid = nginx.MasterPid;
            during = Peers();
        }
        Assert.Matches(new Regex($"^{pid} nginx ", RegexOptions.Multiline), during);
        Assert.NotEqual(before, during);
        Assert.Equal(before, Peers());
    }

    /// <summary>No script of the lab ends processes by name (pkill, killall, pidof, pgrep): only by the id it started.</summary>
    [Fact]
    public void NoScriptEndsAProcessByName()
    {
        var files = new[] { "scripts", "bench", ".ci", ".devcontainer", "tests" }
            .SelectMany(d => Directory.EnumerateFiles(Path.Combine(RepoRoot.Path, d), "*", SearchOption.TopDirectoryOnly))
            .Append(Path.Combine(RepoRoot.Path, "lab"))
            .Where(f => !f.EndsWith(".md", StringComparison.Ordinal) && !f.EndsWith(".json", StringComparison.Ordinal));
        var byName = new Regex(@"\b(pkill|killall|pidof|pgrep)\b");
        var hits = files.SelectMany(f => File.ReadLines(f).Select((l, i) => (f, i, l)))
            .Where(x => !x.l.TrimStart().StartsWith('#') && byName.IsMatch(x.l))
            .Select(x => $"{Path.GetRelativePath(RepoRoot.Path, x.f)}:{x.i + 1}: {x.l.Trim()}").ToList();
        Assert.True(hits.Count == 0, string.Join('\n', hits));
    }
}
