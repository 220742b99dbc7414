#!/usr/bin/env python3
"""An independent SAML IdP for seatgate's tests, built on pysaml2 (signing through the
xmlsec1 CLI): it prints its metadata, or answers an AuthnRequest taken from seatgate's
HTTP-Redirect URL with a signed Response in the shape of a given IdP.

  pysaml2_idp.py metadata --entity-id E --sso-url U --key K --cert C
  pysaml2_idp.py respond  --entity-id E --sso-url U --key K --cert C --sp-metadata FILE
                          --redirect-url URL --name-id N [--name-id-format F]
                          [--attributes JSON] [--sign-response] [--no-sign-assertion]
                          [--sign-alg rsa-sha256|rsa-sha1]
Prints the base64 SAMLResponse (respond) or the metadata XML (metadata) on stdout.
"""
import argparse
import base64
import json
import shutil
import sys
import urllib.parse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, xmldsig
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server

SIGN_ALGS = {"rsa-sha256": xmldsig.SIG_RSA_SHA256, "rsa-sha1": xmldsig.SIG_RSA_SHA1}
DIGEST_ALGS = {"rsa-sha256": xmldsig.DIGEST_SHA256, "rsa-sha1": xmldsig.DIGEST_SHA1}


def config(args, sp_metadata=None):
    conf = {
        "entityid": args.entity_id,
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [(args.sso_url, BINDING_HTTP_REDIRECT)],
                },
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_UNSPECIFIED,
                    },
                },
            },
        },
        "key_file": args.key,
        "cert_file": args.cert,
        "xmlsec_binary": shutil.which("xmlsec1"),
        # Attribute names are sent exactly as given (no friendly-name conversion).
        "attribute_map_dir": None,
    }
    if sp_metadata:
        conf["metadata"] = {"local": [sp_metadata]}
    c = IdPConfig()
    c.load(conf)
    return c


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["metadata", "respond"])
    p.add_argument("--entity-id", required=True)
    p.add_argument("--sso-url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--sp-metadata")
    p.add_argument("--redirect-url")
    p.add_argument("--name-id")
    p.add_argument("--name-id-format", default="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
    p.add_argument("--attributes", default="{}")
    p.add_argument("--sign-response", action="store_true")
    p.add_argument("--no-sign-assertion", action="store_true")
    p.add_argument("--no-destination", action="store_true")
    p.add_argument("--sign-alg", default="rsa-sha256", choices=sorted(SIGN_ALGS))
    args = p.parse_args()

    if args.mode == "metadata":
        print(str(entity_descriptor(config(args))))
        return

    server = Server(config=config(args, args.sp_metadata))
    query = urllib.parse.parse_qs(urllib.parse.urlparse(args.redirect_url).query)
    request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
    acs = request.assertion_consumer_service_url or server.config.metadata.assertion_consumer_service(
        request.issuer.text, BINDING_HTTP_POST
    )[0]["location"]
    identity = {k: v if isinstance(v, list) else [v] for k, v in json.loads(args.attributes).items()}
    response = server.create_authn_response(
        identity,
        in_response_to=request.id,
        destination=None if args.no_destination else acs,
        sp_entity_id=request.issuer.text,
        name_id=NameID(format=args.name_id_format, text=args.name_id),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_response=args.sign_response,
        sign_assertion=not args.no_sign_assertion,
        sign_alg=SIGN_ALGS[args.sign_alg],
        digest_alg=DIGEST_ALGS[args.sign_alg],
    )
    sys.stdout.write(base64.b64encode(str(response).encode()).decode() + "\n")


if __name__ == "__main__":
    main()
