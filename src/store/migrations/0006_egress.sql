-- Which of the server's public addresses a domain's mail leaves from;
-- NULL is the server's default (the address the system routes from).
ALTER TABLE domains ADD COLUMN egress_ip TEXT;
