--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: signet_events_append_only(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.signet_events_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
	RAISE EXCEPTION 'audit events are append-only';
END $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: acme_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.acme_accounts (
    id text NOT NULL COLLATE pg_catalog."C",
    authority text NOT NULL COLLATE pg_catalog."C",
    key_id text NOT NULL,
    jwk bytea NOT NULL,
    contacts text NOT NULL,
    status text NOT NULL,
    eab_kid text,
    created_at bigint NOT NULL
);


--
-- Name: acme_eab_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.acme_eab_keys (
    kid text NOT NULL COLLATE pg_catalog."C",
    authority text NOT NULL COLLATE pg_catalog."C",
    sealed bytea NOT NULL,
    created_at bigint NOT NULL,
    account_id text COLLATE pg_catalog."C"
);


--
-- Name: acme_orders; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.acme_orders (
    id text NOT NULL COLLATE pg_catalog."C",
    authority text NOT NULL COLLATE pg_catalog."C",
    account_id text NOT NULL COLLATE pg_catalog."C",
    status text NOT NULL,
    expires bigint NOT NULL,
    cert_serial text COLLATE pg_catalog."C",
    replaces text COLLATE pg_catalog."C",
    body bytea NOT NULL,
    created_at bigint NOT NULL,
    version bigint NOT NULL
);


--
-- Name: authorities; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.authorities (
    name text NOT NULL COLLATE pg_catalog."C",
    purpose text NOT NULL,
    parent text COLLATE pg_catalog."C",
    key_uri text NOT NULL,
    cert_der bytea,
    policy bytea,
    default_validity bigint NOT NULL,
    max_validity bigint NOT NULL,
    created_at bigint NOT NULL,
    event_seq bigint NOT NULL,
    base_url text DEFAULT ''::text NOT NULL,
    shards integer DEFAULT 1 NOT NULL
);


--
-- Name: certificate_names; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.certificate_names (
    serial text NOT NULL COLLATE pg_catalog."C",
    type text NOT NULL,
    value text NOT NULL,
    CONSTRAINT certificate_names_type_check CHECK ((type = ANY (ARRAY['dns'::text, 'ip'::text, 'email'::text])))
);


--
-- Name: certificates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.certificates (
    serial text NOT NULL COLLATE pg_catalog."C",
    authority text NOT NULL COLLATE pg_catalog."C",
    subject text NOT NULL,
    sans text NOT NULL,
    not_before bigint NOT NULL,
    not_after bigint NOT NULL,
    status text NOT NULL,
    revoked_at bigint,
    reason integer DEFAULT 0 NOT NULL,
    requester text NOT NULL,
    der bytea NOT NULL,
    issue_seq bigint NOT NULL,
    shard integer DEFAULT 0 NOT NULL,
    revoke_seq bigint,
    CONSTRAINT certificates_status_check CHECK ((status = ANY (ARRAY['valid'::text, 'revoked'::text])))
);


--
-- Name: crl_numbers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.crl_numbers (
    authority text NOT NULL COLLATE pg_catalog."C",
    shard integer NOT NULL,
    number bigint NOT NULL
);


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    seq bigint NOT NULL,
    "time" bigint NOT NULL,
    kind text NOT NULL,
    actor text NOT NULL,
    authority text NOT NULL,
    subject text NOT NULL,
    data bytea,
    prev bytea NOT NULL,
    hash bytea NOT NULL
);


--
-- Name: ocsp_responses; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ocsp_responses (
    authority text NOT NULL COLLATE pg_catalog."C",
    hash text NOT NULL,
    serial text NOT NULL COLLATE pg_catalog."C",
    revoked boolean NOT NULL,
    der bytea NOT NULL,
    this_update bigint NOT NULL,
    next_update bigint NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT ocsp_responses_hash_check CHECK ((hash = ANY (ARRAY['sha1'::text, 'sha256'::text])))
);


--
-- Name: published_crls; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.published_crls (
    authority text NOT NULL COLLATE pg_catalog."C",
    shard integer NOT NULL,
    der bytea NOT NULL,
    this_update bigint NOT NULL,
    next_update bigint NOT NULL,
    version bigint NOT NULL
);


--
-- Name: revocation_version; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.revocation_version
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    applied_at bigint NOT NULL
);


--
-- Name: secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secrets (
    name text NOT NULL COLLATE pg_catalog."C",
    value bytea NOT NULL,
    created_at bigint NOT NULL
);


--
-- Name: ssh_authority_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ssh_authority_keys (
    authority text NOT NULL COLLATE pg_catalog."C",
    fingerprint text NOT NULL,
    key_uri text NOT NULL,
    public_key text NOT NULL,
    state text NOT NULL,
    created_at bigint NOT NULL,
    event_seq bigint NOT NULL,
    CONSTRAINT ssh_authority_keys_state_check CHECK ((state = ANY (ARRAY['active'::text, 'trusted'::text, 'retired'::text, 'revoked'::text])))
);


--
-- Name: ssh_certificates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ssh_certificates (
    issue_seq bigint NOT NULL,
    serial bigint NOT NULL,
    authority text NOT NULL COLLATE pg_catalog."C",
    ca_fingerprint text NOT NULL,
    key_id text NOT NULL,
    type text NOT NULL,
    principals text NOT NULL,
    valid_after bigint NOT NULL,
    valid_before bigint NOT NULL,
    status text NOT NULL,
    revoked_at bigint,
    revoked_by text,
    requester text NOT NULL,
    cert bytea NOT NULL,
    CONSTRAINT ssh_certificates_revoked_by_check CHECK ((revoked_by = ANY (ARRAY['serial'::text, 'key-id'::text]))),
    CONSTRAINT ssh_certificates_serial_check CHECK ((serial > 0)),
    CONSTRAINT ssh_certificates_status_check CHECK ((status = ANY (ARRAY['valid'::text, 'revoked'::text]))),
    CONSTRAINT ssh_certificates_type_check CHECK ((type = ANY (ARRAY['host'::text, 'user'::text])))
);


--
-- Data for Name: acme_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.acme_accounts VALUES ('acct1', 'web', 'thumb1', '\x7b226b7479223a224543227d', '["mailto:admin@example.org"]', 'valid', 'kid1', 1796518923456789012);


--
-- Data for Name: acme_eab_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.acme_eab_keys VALUES ('kid1', 'web', '\x7365616c6564', 1796518923456789012, 'acct1');


--
-- Data for Name: acme_orders; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.acme_orders VALUES ('order1', 'web', 'acct1', 'valid', 1796522523456789012, '01aa', NULL, '\x7b226964656e74696669657273223a5b7b2274797065223a22646e73222c2276616c7565223a227777772e6578616d706c652e6f7267227d5d2c22617574687a73223a5b7b226964656e746966696572223a7b2274797065223a22646e73222c2276616c7565223a227777772e6578616d706c652e6f7267227d2c22737461747573223a2276616c6964222c226368616c6c656e676573223a5b7b2274797065223a22687474702d3031222c22746f6b656e223a22746f6b222c22737461747573223a2276616c6964222c2276616c696461746564223a22323032362d31322d30365430313a30323a30332e3435363738393031325a227d5d7d5d7d', 1796518923456789012, 1);


--
-- Data for Name: authorities; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.authorities VALUES ('root', 'root', NULL, 'file:root.key', '\x726f6f742063657274', '\x7b22646e73223a5b222a225d7d', 3600000000000, 7200000000000, 1796518923456789012, 1, '', 1);
INSERT INTO public.authorities VALUES ('web', 'tls-server', 'root', 'file:web.key', '\x7765622063657274', NULL, 3600000000000, 7200000000000, 1796518923456789012, 2, 'http://ca.example.org', 2);
INSERT INTO public.authorities VALUES ('users', 'ssh-user', NULL, 'file:ssh.key', NULL, '\x7b7d', 3600000000000, 7200000000000, 1796518923456789012, 7, '', 1);


--
-- Data for Name: certificate_names; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.certificate_names VALUES ('01aa', 'ip', '192.0.2.1');
INSERT INTO public.certificate_names VALUES ('01aa', 'dns', 'example.org');
INSERT INTO public.certificate_names VALUES ('01aa', 'dns', 'www.example.org');
INSERT INTO public.certificate_names VALUES ('02bb', 'email', 'postmaster@example.org');


--
-- Data for Name: certificates; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.certificates VALUES ('01aa', 'web', 'CN=www.example.org', '{"dns":["www.example.org","example.org"],"ip":["192.0.2.1"]}', 1796518923456789012, 1804294923456789012, 'valid', NULL, 0, 'before', '\x3001', 3, 1, NULL);
INSERT INTO public.certificates VALUES ('02bb', 'web', 'CN=mail.example.org', '{"email":["postmaster@example.org"]}', 1796518923456789012, 1804294923456789012, 'revoked', 1796518983456789012, 1, 'before', '\x3002', 4, 0, 5);


--
-- Data for Name: crl_numbers; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.crl_numbers VALUES ('web', 0, 1);
INSERT INTO public.crl_numbers VALUES ('web', 1, 1);


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.events VALUES (1, 1796518923456789012, 'authority.create', 'before', 'root', 'root', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x0000000000000000000000000000000000000000000000000000000000000000', '\x2e3d4dbb1de11dc1f6657615e80623e8bcfd9f12b7e668fc22baf9a60df76664');
INSERT INTO public.events VALUES (2, 1796518923456789012, 'authority.create', 'before', 'web', 'web', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x2e3d4dbb1de11dc1f6657615e80623e8bcfd9f12b7e668fc22baf9a60df76664', '\xc618ca3e28fa940a8b4946cc134e1402e8774e1036da9d46aab6c1fdfbe32b75');
INSERT INTO public.events VALUES (3, 1796518923456789012, 'certificate.issue', 'before', 'web', '01aa', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\xc618ca3e28fa940a8b4946cc134e1402e8774e1036da9d46aab6c1fdfbe32b75', '\x1ef32f5ec561a65aeb073db092171140240fd3781471759e672601e83dca8a1f');
INSERT INTO public.events VALUES (4, 1796518923456789012, 'certificate.issue', 'before', 'web', '02bb', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x1ef32f5ec561a65aeb073db092171140240fd3781471759e672601e83dca8a1f', '\x12d133bdaed1b3b60727554f6dc94f96933d2af3f90b511133b724932625df7d');
INSERT INTO public.events VALUES (5, 1796518923456789012, 'certificate.revoke', 'before', 'web', '02bb', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x12d133bdaed1b3b60727554f6dc94f96933d2af3f90b511133b724932625df7d', '\x2ed93c3376cfc2f0ab5598e8592255d036113f36e65b9672603782348fc098c3');
INSERT INTO public.events VALUES (6, 1796518923456789012, 'key.generate', 'before', '', 'file:ssh.key', NULL, '\x2ed93c3376cfc2f0ab5598e8592255d036113f36e65b9672603782348fc098c3', '\x95aaeb0939a66e404d000aa80fab8e258c4b5eeaaee1f8063a23b93eaf346b60');
INSERT INTO public.events VALUES (7, 1796518923456789012, 'authority.create', 'before', 'users', 'users', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x95aaeb0939a66e404d000aa80fab8e258c4b5eeaaee1f8063a23b93eaf346b60', '\x508c8b92717da966bb006a3ce5f7c5116cb25b6c9f46d7cbd68276e751dafd2e');
INSERT INTO public.events VALUES (8, 1796518923456789012, 'ssh.certificate.issue', 'before', 'users', 'ssh:7', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x508c8b92717da966bb006a3ce5f7c5116cb25b6c9f46d7cbd68276e751dafd2e', '\xcfadc432b853364562e6572d74d2d93442cf1e2af8fb57a83f4efe4153cae39a');
INSERT INTO public.events VALUES (9, 1796518923456789012, 'ssh.certificate.revoke', 'before', 'users', 'ssh-key-id:alice', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\xcfadc432b853364562e6572d74d2d93442cf1e2af8fb57a83f4efe4153cae39a', '\x31784a651426c5c95056cc8cc44b9ef2eb857833884b54b45031f7009fddf5e7');
INSERT INTO public.events VALUES (10, 1796518923456789012, 'acme.eab.create', 'before', 'web', 'kid1', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x31784a651426c5c95056cc8cc44b9ef2eb857833884b54b45031f7009fddf5e7', '\x2497133b697dd513377fe16cf7d7da847de36fad1d6ddf82b1692d646d99ad1a');
INSERT INTO public.events VALUES (11, 1796518923456789012, 'acme.account.create', 'before', 'web', 'acct1', '\x7b226d616465223a226265666f72652073716c73746f7265227d', '\x2497133b697dd513377fe16cf7d7da847de36fad1d6ddf82b1692d646d99ad1a', '\x26fcfba1d0e2c66030a63b773efeaeef5888148dc0c9506f0725e1991bcffd43');


--
-- Data for Name: ocsp_responses; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: published_crls; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.published_crls VALUES ('web', 0, '\x63726c', 1796518923456789012, 1796522523456789012, 1);


--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.schema_migrations VALUES (1, 1796555539508914901);
INSERT INTO public.schema_migrations VALUES (2, 1796555539508914901);
INSERT INTO public.schema_migrations VALUES (3, 1796555539508914901);


--
-- Data for Name: secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secrets VALUES ('cookie', '\x7365637265742076616c7565', 1796555539680978233);


--
-- Data for Name: ssh_authority_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.ssh_authority_keys VALUES ('users', 'SHA256:one', 'file:ssh.key', 'ssh-ed25519 AAAAone', 'active', 1796518923456789012, 7);


--
-- Data for Name: ssh_certificates; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.ssh_certificates VALUES (8, 7, 'users', 'SHA256:one', 'alice', 'user', '["alice"]', 1796518923456789012, 1796522523456789012, 'revoked', 1796518983456789012, 'key-id', 'before', '\x010203');


--
-- Name: revocation_version; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.revocation_version', 1, true);


--
-- Name: acme_accounts acme_accounts_authority_key_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_accounts
    ADD CONSTRAINT acme_accounts_authority_key_id_key UNIQUE (authority, key_id);


--
-- Name: acme_accounts acme_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_accounts
    ADD CONSTRAINT acme_accounts_pkey PRIMARY KEY (id);


--
-- Name: acme_eab_keys acme_eab_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_eab_keys
    ADD CONSTRAINT acme_eab_keys_pkey PRIMARY KEY (kid);


--
-- Name: acme_orders acme_orders_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_orders
    ADD CONSTRAINT acme_orders_pkey PRIMARY KEY (id);


--
-- Name: authorities authorities_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authorities
    ADD CONSTRAINT authorities_pkey PRIMARY KEY (name);


--
-- Name: certificate_names certificate_names_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificate_names
    ADD CONSTRAINT certificate_names_pkey PRIMARY KEY (serial, type, value);


--
-- Name: certificates certificates_issue_seq_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_issue_seq_key UNIQUE (issue_seq);


--
-- Name: certificates certificates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_pkey PRIMARY KEY (serial);


--
-- Name: crl_numbers crl_numbers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.crl_numbers
    ADD CONSTRAINT crl_numbers_pkey PRIMARY KEY (authority, shard);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (seq);


--
-- Name: ocsp_responses ocsp_responses_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ocsp_responses
    ADD CONSTRAINT ocsp_responses_pkey PRIMARY KEY (authority, hash, serial);


--
-- Name: published_crls published_crls_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.published_crls
    ADD CONSTRAINT published_crls_pkey PRIMARY KEY (authority, shard);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: secrets secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (name);


--
-- Name: ssh_authority_keys ssh_authority_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_authority_keys
    ADD CONSTRAINT ssh_authority_keys_pkey PRIMARY KEY (authority, fingerprint);


--
-- Name: ssh_certificates ssh_certificates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_certificates
    ADD CONSTRAINT ssh_certificates_pkey PRIMARY KEY (issue_seq);


--
-- Name: ssh_certificates ssh_certificates_serial_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_certificates
    ADD CONSTRAINT ssh_certificates_serial_key UNIQUE (serial);


--
-- Name: acme_orders_account; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX acme_orders_account ON public.acme_orders USING btree (account_id, id);


--
-- Name: acme_orders_cert; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX acme_orders_cert ON public.acme_orders USING btree (cert_serial) WHERE (cert_serial IS NOT NULL);


--
-- Name: acme_orders_expires; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX acme_orders_expires ON public.acme_orders USING btree (expires);


--
-- Name: acme_orders_replaces; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX acme_orders_replaces ON public.acme_orders USING btree (replaces) WHERE (replaces IS NOT NULL);


--
-- Name: certificate_names_value; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificate_names_value ON public.certificate_names USING btree (value, serial);


--
-- Name: certificates_authority_not_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_authority_not_after ON public.certificates USING btree (authority, not_after, serial);


--
-- Name: certificates_issued; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_issued ON public.certificates USING btree (issue_seq) INCLUDE (authority, shard, serial, not_after, status, revoked_at, reason);


--
-- Name: certificates_not_after; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_not_after ON public.certificates USING btree (not_after, serial);


--
-- Name: certificates_revocations; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_revocations ON public.certificates USING btree (revoke_seq) INCLUDE (authority, shard, serial, not_after, revoked_at, reason) WHERE (status = 'revoked'::text);


--
-- Name: certificates_revoked; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX certificates_revoked ON public.certificates USING btree (not_after, serial) WHERE (status = 'revoked'::text);


--
-- Name: published_crls_version; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX published_crls_version ON public.published_crls USING btree (version);


--
-- Name: ssh_authority_keys_one_active; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ssh_authority_keys_one_active ON public.ssh_authority_keys USING btree (authority) WHERE (state = 'active'::text);


--
-- Name: ssh_certificates_key_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ssh_certificates_key_id ON public.ssh_certificates USING btree (authority, key_id);


--
-- Name: ssh_certificates_revoked; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ssh_certificates_revoked ON public.ssh_certificates USING btree (authority, serial) WHERE (status = 'revoked'::text);


--
-- Name: events events_append_only; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER events_append_only BEFORE DELETE OR UPDATE ON public.events FOR EACH ROW EXECUTE FUNCTION public.signet_events_append_only();


--
-- Name: acme_accounts acme_accounts_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_accounts
    ADD CONSTRAINT acme_accounts_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: acme_eab_keys acme_eab_keys_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_eab_keys
    ADD CONSTRAINT acme_eab_keys_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.acme_accounts(id);


--
-- Name: acme_eab_keys acme_eab_keys_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_eab_keys
    ADD CONSTRAINT acme_eab_keys_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: acme_orders acme_orders_account_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_orders
    ADD CONSTRAINT acme_orders_account_id_fkey FOREIGN KEY (account_id) REFERENCES public.acme_accounts(id);


--
-- Name: acme_orders acme_orders_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.acme_orders
    ADD CONSTRAINT acme_orders_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: authorities authorities_event_seq_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authorities
    ADD CONSTRAINT authorities_event_seq_fkey FOREIGN KEY (event_seq) REFERENCES public.events(seq);


--
-- Name: authorities authorities_parent_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.authorities
    ADD CONSTRAINT authorities_parent_fkey FOREIGN KEY (parent) REFERENCES public.authorities(name);


--
-- Name: certificate_names certificate_names_serial_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificate_names
    ADD CONSTRAINT certificate_names_serial_fkey FOREIGN KEY (serial) REFERENCES public.certificates(serial);


--
-- Name: certificates certificates_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: certificates certificates_issue_seq_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.certificates
    ADD CONSTRAINT certificates_issue_seq_fkey FOREIGN KEY (issue_seq) REFERENCES public.events(seq);


--
-- Name: crl_numbers crl_numbers_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.crl_numbers
    ADD CONSTRAINT crl_numbers_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: ocsp_responses ocsp_responses_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ocsp_responses
    ADD CONSTRAINT ocsp_responses_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: published_crls published_crls_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.published_crls
    ADD CONSTRAINT published_crls_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: ssh_authority_keys ssh_authority_keys_authority_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_authority_keys
    ADD CONSTRAINT ssh_authority_keys_authority_fkey FOREIGN KEY (authority) REFERENCES public.authorities(name);


--
-- Name: ssh_authority_keys ssh_authority_keys_event_seq_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_authority_keys
    ADD CONSTRAINT ssh_authority_keys_event_seq_fkey FOREIGN KEY (event_seq) REFERENCES public.events(seq);


--
-- Name: ssh_certificates ssh_certificates_authority_ca_fingerprint_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_certificates
    ADD CONSTRAINT ssh_certificates_authority_ca_fingerprint_fkey FOREIGN KEY (authority, ca_fingerprint) REFERENCES public.ssh_authority_keys(authority, fingerprint);


--
-- Name: ssh_certificates ssh_certificates_issue_seq_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ssh_certificates
    ADD CONSTRAINT ssh_certificates_issue_seq_fkey FOREIGN KEY (issue_seq) REFERENCES public.events(seq);


--
-- PostgreSQL database dump complete
--


