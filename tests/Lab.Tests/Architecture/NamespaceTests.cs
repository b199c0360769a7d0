using System.Text.RegularExpressions;

namespace Lab.Tests.Architecture;

/// <summary>A file's namespace is its folder's (lib/Lab/Http/TinyHttp.cs is Lab.Http), and every CLI verb is registered one way.</summary>
public class NamespaceTests
{
    [Theory]
    [InlineData("Lab")]
    [InlineData("Lab.Cli")]
    public void EveryFilesNamespaceIsItsFolders(string project)
    {
        var dir = Path.Combine(RepoRoot.Path, "lib", project);
        var wrong = Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/") && Path.GetFileName(f) != "Program.cs")
            .Select(f =>
            {
                var folder = Path.GetDirectoryName(Path.GetRelativePath(dir, f))!;
                var expected = folder.Length == 0 ? project : project + "." + folder.Replace(Path.DirectorySeparatorChar, '.');
                var actual = Regex.Match(File.ReadAllText(f), @"^namespace\s+([\w.]+)", RegexOptions.Multiline).Groups[1].Value;
                return (File: Path.GetRelativePath(RepoRoot.Path, f), Expected: expected, Actual: actual);
            })
            .Where(x => x.Actual != x.Expected)
            .Select(x => $"{x.File}: namespace {x.Actual}, its folder says {x.Expected}")
            .ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void EveryVerbIsOneFileUnderCommandsAndProgramAddsItsCreate()
    {
        var commands = Path.Combine(RepoRoot.Path, "lib", "Lab.Cli", "Commands");
        var program = File.ReadAllText(Path.Combine(RepoRoot.Path, "lib", "Lab.Cli", "Program.cs"));
        var verbs = Directory.EnumerateFiles(commands, "*Command.cs").Select(Path.GetFileNameWithoutExtension).ToList();
        Assert.NotEmpty(verbs);
        foreach (var verb in verbs)
        {
            var source = File.ReadAllText(Path.Combine(commands, verb + ".cs"));
            Assert.Matches($@"static class {verb}\b", source);
            Assert.Matches(@"public static Command Create\(\)", source);
            Assert.Contains($"{verb}.Create()", program);
        }
        // Program.cs builds no Command itself: a verb defined there would be the second way to register one.
        Assert.DoesNotMatch(@"new\s+(System\.CommandLine\.)?Command\(", program);
    }
}
