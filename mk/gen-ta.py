#!/usr/bin/env python3
"""mk/gen-ta.py - compile the system's CA bundle into BearSSL trust anchors.

    python3 mk/gen-ta.py /etc/ssl/certs/ca-certificates.crt build/gen/trust_anchors.c

Reads a PEM bundle (Debian's ca-certificates) and writes a C file defining

    const br_x509_trust_anchor sl_builtin_tas[];
    const size_t sl_builtin_ta_count;

with, for every certificate, the facts BearSSL's `brssl ta` prints: the
subject DN as encoded in the certificate, the BR_X509_TA_CA flag when a
Basic Constraints extension says cA=TRUE, and the public key (RSA modulus
and exponent without leading zero bytes; EC curve and encoded point).

Only Python 3's standard library is used: the DER walk below is the small
subset of X.509 those facts need, and it is strict (a truncated or malformed
certificate is an error).  A certificate whose key BearSSL cannot use
(neither RSA nor EC on P-256/P-384/P-521) is skipped with a note on stderr.
Fewer than MIN_ANCHORS anchors means the bundle or this script is broken,
and the build stops.  The output is written to a temporary file and renamed,
so a failed run never leaves a partial table behind.
"""
import base64
import os
import re
import sys

MIN_ANCHORS = 100

OID_RSA = bytes.fromhex("2a864886f70d010101")        # 1.2.840.113549.1.1.1
OID_EC = bytes.fromhex("2a8648ce3d0201")             # 1.2.840.10045.2.1
OID_BASIC_CONSTRAINTS = bytes.fromhex("551d13")      # 2.5.29.19
OID_CN = bytes.fromhex("550403")                     # 2.5.4.3
OID_O = bytes.fromhex("55040a")                      # 2.5.4.10
CURVES = {                                           # BearSSL's curve ids
    bytes.fromhex("2a8648ce3d030107"): ("BR_EC_secp256r1", 23),
    bytes.fromhex("2b81040022"): ("BR_EC_secp384r1", 24),
    bytes.fromhex("2b81040023"): ("BR_EC_secp521r1", 25),
}


class DerError(Exception):
    pass


def tlv(buf, off, end):
    """One DER element at buf[off:end]: (tag, content_start, content_end)."""
    if off + 2 > end:
        raise DerError("truncated header")
    tag = buf[off]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tag")
    n = buf[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or off + k > end:
            raise DerError("bad length")
        n = int.from_bytes(buf[off:off + k], "big")
        off += k
    if off + n > end:
        raise DerError("element overruns its parent")
    return tag, off, off + n


def children(buf, start, end):
    """The elements inside a constructed element's content."""
    out = []
    off = start
    while off < end:
        tag, cs, ce = tlv(buf, off, end)
        out.append((tag, off, cs, ce))
        off = ce
    return out


def expect(el, tag, what):
    if el[0] != tag:
        raise DerError("%s: tag 0x%02x, want 0x%02x" % (what, el[0], tag))
    return el


def unsigned(b):
    """An INTEGER's content as BearSSL keeps it: no leading zero bytes."""
    if b and b[0] & 0x80:
        raise DerError("negative integer in a public key")
    b = b.lstrip(b"\x00")
    if not b:
        raise DerError("zero integer in a public key")
    return b


def bits(buf, el):
    """A BIT STRING's bytes; partial bytes are not valid in a key."""
    _, _, cs, ce = expect(el, 0x03, "subjectPublicKey")
    if cs == ce or buf[cs] != 0:
        raise DerError("public key BIT STRING with unused bits")
    return buf[cs + 1:ce]


def name_label(buf, dn):
    """'CN' (or 'O') of a DN for the comment beside each anchor."""
    found = {}
    _, _, cs, ce = dn
    for rdn in children(buf, cs, ce):
        for atv in children(buf, rdn[2], rdn[3]):
            parts = children(buf, atv[2], atv[3])
            if len(parts) == 2 and parts[0][0] == 0x06:
                oid = buf[parts[0][2]:parts[0][3]]
                found.setdefault(oid, buf[parts[1][2]:parts[1][3]])
    raw = found.get(OID_CN) or found.get(OID_O) or b"?"
    text = raw.decode("utf-8", "replace") if raw else "?"
    # Keep the C comment ASCII and unbreakable.
    return re.sub(r"[^ -~]", "?", text).replace("*/", "*?")


def anchor(der):
    """The trust-anchor facts of one certificate, or a reason to skip it."""
    _, cs, ce = tlv(der, 0, len(der))
    if der[0] != 0x30 or ce != len(der):
        raise DerError("not a single DER SEQUENCE")
    top = children(der, cs, ce)
    if len(top) != 3:
        raise DerError("Certificate has %d elements" % len(top))
    tbs = expect(top[0], 0x30, "tbsCertificate")
    el = children(der, tbs[2], tbs[3])
    i = 0
    if el and el[0][0] == 0xA0:         # [0] version
        i = 1
    if len(el) < i + 6:
        raise DerError("tbsCertificate too short")
    expect(el[i], 0x02, "serialNumber")
    expect(el[i + 1], 0x30, "signature")
    expect(el[i + 2], 0x30, "issuer")
    expect(el[i + 3], 0x30, "validity")
    subject = expect(el[i + 4], 0x30, "subject")
    spki = expect(el[i + 5], 0x30, "subjectPublicKeyInfo")
    dn = der[subject[1]:subject[3]]     # the whole encoded Name

    alg, key = children(der, spki[2], spki[3])
    algp = children(der, alg[2], alg[3])
    oid = der[expect(algp[0], 0x06, "algorithm")[2]:algp[0][3]]
    if oid == OID_RSA:
        kb = bits(der, key)
        seq = children(kb, *tlv(kb, 0, len(kb))[1:])
        if len(seq) != 2:
            raise DerError("RSAPublicKey has %d elements" % len(seq))
        n = unsigned(kb[expect(seq[0], 0x02, "modulus")[2]:seq[0][3]])
        e = unsigned(kb[expect(seq[1], 0x02, "exponent")[2]:seq[1][3]])
        pkey = ("RSA", n, e)
    elif oid == OID_EC:
        if len(algp) != 2 or algp[1][0] != 0x06:
            return None, "EC key without a named curve"
        curve = CURVES.get(der[algp[1][2]:algp[1][3]])
        if curve is None:
            return None, "EC curve BearSSL does not support"
        pkey = ("EC", curve[0], bits(der, key))
    else:
        return None, "key type BearSSL does not support"

    is_ca = False
    for e_ in el[i + 6:]:
        if e_[0] != 0xA3:               # [1], [2]: unique identifiers
            continue
        exts = children(der, e_[2], e_[3])
        if len(exts) != 1:
            raise DerError("extensions wrapper")
        for ext in children(der, exts[0][2], exts[0][3]):
            parts = children(der, ext[2], ext[3])
            if der[parts[0][2]:parts[0][3]] != OID_BASIC_CONSTRAINTS:
                continue
            val = expect(parts[-1], 0x04, "extnValue")
            bc = tlv(der, val[2], val[3])
            for f in children(der, bc[1], bc[2]):
                if f[0] == 0x01:        # cA BOOLEAN, first if present
                    if f[3] - f[2] != 1:
                        raise DerError("bad BOOLEAN")
                    is_ca = der[f[2]] != 0
                break
    return (dn, is_ca, pkey, name_label(der, subject)), None


def pem_certs(text):
    """DER bytes of every CERTIFICATE block, in file order."""
    blocks = re.findall(r"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----"
                        r"(.*?)-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
                        text, re.S)
    return [base64.b64decode("".join(b.split()), validate=True) for b in blocks]


def carray(name, data):
    lines = ["static const unsigned char %s[] = {" % name]
    for k in range(0, len(data), 12):
        lines.append("\t" + ", ".join("0x%02X" % b for b in data[k:k + 12]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: gen-ta.py BUNDLE.pem OUT.c\n")
        return 2
    src, out = argv[1], argv[2]
    with open(src, "r", encoding="ascii", errors="replace") as f:
        certs = pem_certs(f.read())

    tas = []
    for k, der in enumerate(certs):
        try:
            ta, why = anchor(der)
        except DerError as e:
            sys.stderr.write("gen-ta: %s: certificate %d: %s\n" % (src, k, e))
            return 1
        if ta is None:
            sys.stderr.write("gen-ta: note: certificate %d skipped: %s\n" % (k, why))
            continue
        tas.append(ta)
    if len(tas) < MIN_ANCHORS:
        sys.stderr.write("gen-ta: only %d trust anchors in %s (want at least %d)\n"
                         % (len(tas), src, MIN_ANCHORS))
        return 1

    body = ["/* Generated by mk/gen-ta.py from %s: %d trust anchors.  Do not edit. */"
            % (src, len(tas)),
            "#include <stddef.h>", "#include <bearssl.h>", "",
            "extern const br_x509_trust_anchor sl_builtin_tas[];",
            "extern const size_t sl_builtin_ta_count;", ""]
    entries = []
    for k, (dn, is_ca, pkey, label) in enumerate(tas):
        body.append("/* %d: %s */" % (k, label))
        body.append(carray("TA%d_DN" % k, dn))
        flags = "BR_X509_TA_CA" if is_ca else "0"
        if pkey[0] == "RSA":
            body.append(carray("TA%d_RSA_N" % k, pkey[1]))
            body.append(carray("TA%d_RSA_E" % k, pkey[2]))
            key = ("{ BR_KEYTYPE_RSA, { .rsa = { (unsigned char *)TA{0}_RSA_N, sizeof TA{0}_RSA_N, "
                   "(unsigned char *)TA{0}_RSA_E, sizeof TA{0}_RSA_E } } }")
        else:
            body.append(carray("TA%d_EC_Q" % k, pkey[2]))
            key = ("{ BR_KEYTYPE_EC, { .ec = { " + pkey[1] +
                   ", (unsigned char *)TA{0}_EC_Q, sizeof TA{0}_EC_Q } } }")
        body.append("")
        entries.append("\t{ { (unsigned char *)TA{0}_DN, sizeof TA{0}_DN }, ".replace("{0}", str(k))
                       + flags + ", " + key.replace("{0}", str(k)) + " },")
    body.append("const br_x509_trust_anchor sl_builtin_tas[] = {")
    body.extend(entries)
    body.append("};")
    body.append("")
    body.append("const size_t sl_builtin_ta_count = %d;" % len(tas))

    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(body) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
