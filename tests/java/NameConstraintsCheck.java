// Validates a leaf certificate against one CA with Java's PKIX CertPathValidator (what
// JSSE's default trust manager uses): prints "valid" and exits 0, or prints "invalid: <why>"
// and exits 1. Run with the single-file launcher: java NameConstraintsCheck.java CA LEAF
// CA holds the trust anchor (its first certificate); LEAF the leaf, then the intermediates
// a server presents after it (a fullchain file), which form the certification path.
import java.io.FileInputStream;
import java.security.cert.CertPathValidator;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

public class NameConstraintsCheck {
    public static void main(String[] args) throws Exception {
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        X509Certificate ca;
        List<X509Certificate> path = new ArrayList<>();
        try (FileInputStream in = new FileInputStream(args[0])) {
            ca = (X509Certificate) factory.generateCertificate(in);
        }
        try (FileInputStream in = new FileInputStream(args[1])) {
            for (Certificate cert : factory.generateCertificates(in)) {
                path.add((X509Certificate) cert);
            }
        }
        PKIXParameters params = new PKIXParameters(
            Collections.singleton(new TrustAnchor(ca, null)));
        params.setRevocationEnabled(false);
        try {
            CertPathValidator.getInstance("PKIX").validate(
                factory.generateCertPath(path), params);
        } catch (Exception e) {
            System.out.println("invalid: " + e.getMessage());
            System.exit(1);
        }
        System.out.println("valid");
    }
}
