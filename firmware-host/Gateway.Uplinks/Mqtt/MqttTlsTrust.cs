using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;

namespace Gateway.Uplinks.Mqtt;

/// <summary>The uplink's TLS material: the CA it trusts for the broker (if any) and its client certificate.</summary>
internal sealed class MqttTlsTrust
{
    private readonly X509Certificate2Collection? _trust;

    public MqttTlsTrust(UplinkTlsOptions tls)
    {
        if (!string.IsNullOrEmpty(tls.CaFile))
        {
            _trust = [];
            _trust.ImportFromPemFile(tls.CaFile);
        }

        if (!string.IsNullOrEmpty(tls.CertificateFile) && !string.IsNullOrEmpty(tls.KeyFile))
        {
            // SslStream on Linux wants the key in a PKCS#12 container, not an ephemeral PEM key.
            using var pem = X509Certificate2.CreateFromPemFile(tls.CertificateFile, tls.KeyFile);
            ClientCertificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
    }

    public X509Certificate2? ClientCertificate { get; }

    // With a CA file, the broker's chain must end in one of its certificates (and only those);
    // without one, the system trust store decides. The name is always checked.
    public bool ValidateServerCertificate(MqttClientCertificateValidationEventArgs e)
    {
        if ((e.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 ||
            (e.SslPolicyErrors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0 || e.Certificate is null)
        {
            return false;
        }

        if (_trust is null)
        {
            return e.SslPolicyErrors == SslPolicyErrors.None;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(e.Certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(e.Certificate.GetRawCertData()));
    }
}
