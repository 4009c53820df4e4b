using MQTTnet;

namespace Gateway.Host.IntegrationTests;

/// <summary>Packaging for the board: the unit file, the install script, the arm64 build.</summary>
[Trait("Category", "Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ApplianceTests
{
    [Fact]
    public async Task Install_lays_out_program_config_data_and_a_unit_that_systemd_accepts()
    {
        using var root = new TempDirectory();
        using var build = FakeBuild();

        await RunScriptAsync("install.sh", root.Path, "--from", build.Path);

        Assert.True(File.Exists(Path.Combine(root.Path, "opt/gateway/gateway")));
        Assert.True(File.Exists(Path.Combine(root.Path, "etc/gateway/gateway.json")));
        Assert.True(Directory.Exists(Path.Combine(root.Path, "var/lib/gateway")));
        var unit = Path.Combine(root.Path, "etc/systemd/system/gateway.service");
        Assert.Contains("Type=notify", await File.ReadAllTextAsync(unit), StringComparison.Ordinal);

        // systemd-analyze resolves dependencies like sysinit.target inside --root.
        CopyDirectory("/usr/lib/systemd/system", Path.Combine(root.Path, "usr/lib/systemd/system"));
        ExternalProcess.RequireTool("systemd-analyze");
        await using var verify = ExternalProcess.Start("systemd-analyze", ["verify", $"--root={root.Path}", unit]);
        Assert.Equal(0, await verify.WaitForExitAsync());
        Assert.True(verify.Output.Trim().Length == 0, "systemd-analyze verify complained:\n" + verify.Output);
    }

    [Fact]
    public async Task Reinstall_keeps_an_edited_config_and_uninstall_keeps_data_unless_purged()
    {
        using var root = new TempDirectory();
        using var build = FakeBuild();
        await RunScriptAsync("install.sh", root.Path, "--from", build.Path);
        var config = Path.Combine(root.Path, "etc/gateway/gateway.json");
        await File.WriteAllTextAsync(config, "{ \"Mqtt\": { \"Port\": 1884 } }");
        var data = Path.Combine(root.Path, "var/lib/gateway/keep.me");
        await File.WriteAllTextAsync(data, "x");

        await RunScriptAsync("install.sh", root.Path, "--from", build.Path);
        Assert.Contains("1884", await File.ReadAllTextAsync(config), StringComparison.Ordinal);

        await RunScriptAsync("uninstall.sh", root.Path);
        Assert.False(Directory.Exists(Path.Combine(root.Path, "opt/gateway")));
        Assert.False(File.Exists(Path.Combine(root.Path, "etc/systemd/system/gateway.service")));
        Assert.True(File.Exists(data));
        Assert.True(File.Exists(config));

        await RunScriptAsync("uninstall.sh", root.Path, "--purge");
        Assert.False(File.Exists(data));
        Assert.False(File.Exists(config));
    }

    [Fact]
    public async Task Arm64_build_runs_under_qemu_and_routes_messages()
    {
        if (!File.Exists("/usr/bin/qemu-aarch64-static") || !File.Exists("/lib/ld-linux-aarch64.so.1"))
        {
            Assert.Fail("The arm64 smoke test needs qemu-user-static, arm64 libraries and a cross linker. ./test.sh installs them; by hand: " +
                "dpkg --add-architecture arm64 && apt-get update && apt-get install qemu-user-static libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64 " +
                "clang zlib1g-dev binutils-aarch64-linux-gnu gcc-aarch64-linux-gnu libc6-dev:arm64 zlib1g-dev:arm64");
        }

        using var output = new TempDirectory();
        await using (var publish = ExternalProcess.Start(
            "dotnet",
            ["publish", Repository.File("firmware-host", "Gateway.Host"), "-p:PublishProfile=linux-arm64", "-o", output.Path, "--nologo", "-v", "q"]))
        {
            Assert.True(await publish.WaitForExitAsync(TimeSpan.FromMinutes(5)) == 0, publish.Output);
        }

        using var work = new TempDirectory();
        await using var gateway = ExternalProcess.Start(
            "/usr/bin/qemu-aarch64-static",
            [Path.Combine(output.Path, "gateway"), "--Mqtt:Port=0", "--Mqtt:BindAddress=127.0.0.1", "--Http:Port=0", "--Http:BindAddress=127.0.0.1"],
            work.Path);
        var port = await HostProcessTests.MqttPortOfAsync(gateway, TimeSpan.FromMinutes(2));

        await using var client = await MqttTestClient.ConnectAsync(port);
        await client.SubscribeAsync("arm64/echo");
        await client.PublishAsync("arm64/echo", "round trip through an emulated Pi");
        Assert.Equal("round trip through an emulated Pi", (await client.ReceiveAsync()).ConvertPayloadToString());
    }

    private static TempDirectory FakeBuild()
    {
        var build = new TempDirectory();
        var executable = Path.Combine(build.Path, "gateway");
        File.WriteAllText(executable, "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(executable, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        return build;
    }

    private static async Task RunScriptAsync(string script, string destDir, params string[] args)
    {
        await using var process = ExternalProcess.Start(
            "bash",
            [Repository.File("systemd", script), .. args],
            environment: new Dictionary<string, string> { ["DESTDIR"] = destDir });
        Assert.True(await process.WaitForExitAsync() == 0, $"{script} failed:\n{process.Output}");
    }

    private static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            File.Copy(file, Path.Combine(destination, Path.GetFileName(file)), overwrite: true);
        }
    }
}
